"""Which cluster the end-to-end tests use: the one ``$VAULT_PLATFORM_E2E_KUBECONFIG`` names (the GitHub
workflow's kind), never started nor stopped by the tests, else ``kube-local.sh``'s. No real tool needed."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.servers import EXISTING_CLUSTER_VARIABLE, ExistingCluster, KubeCluster, existing_cluster

KUBECONFIG = {
    "apiVersion": "v1", "kind": "Config", "current-context": "kind-chart-testing",
    "clusters": [{"name": "kind-chart-testing", "cluster": {"server": "https://127.0.0.1:41234",
                                                            "insecure-skip-tls-verify": True}}],
    "contexts": [{"name": "kind-chart-testing", "context": {"cluster": "kind-chart-testing",
                                                            "user": "kind-chart-testing"}}],
    "users": [{"name": "kind-chart-testing", "user": {"token": "e2e-admin"}}],
}


def refuse_to_start(*args: Any, **kwargs: Any) -> None:
    raise AssertionError(f"a process was started: {args}")


def test_a_kubeconfig_in_the_variable_is_used_as_it_is_and_nothing_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "run", refuse_to_start)
    monkeypatch.setattr(subprocess, "Popen", refuse_to_start)
    kubeconfig = tmp_path / "kind-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(KUBECONFIG))
    cluster = existing_cluster({EXISTING_CLUSTER_VARIABLE: str(kubeconfig)})
    assert isinstance(cluster, ExistingCluster)
    assert (cluster.kubeconfig, cluster.runs_pods) == (kubeconfig, True)
    assert not hasattr(cluster, "stop")  # the fixture has nothing to stop: the cluster outlives the tests
    assert cluster.api().configuration.host == "https://127.0.0.1:41234"


@pytest.mark.parametrize("environment", [{}, {EXISTING_CLUSTER_VARIABLE: ""}], ids=["unset", "empty"])
def test_without_the_variable_the_loopback_cluster_is_started(environment: dict[str, str]) -> None:
    assert existing_cluster(environment) is None
    assert KubeCluster.runs_pods is False  # kwok: pods become Ready without running


def test_a_missing_kubeconfig_is_refused_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as refused:
        existing_cluster({EXISTING_CLUSTER_VARIABLE: str(tmp_path / "absent")})
    assert str(refused.value) == (
        f"VAULT_PLATFORM_E2E_KUBECONFIG={tmp_path / 'absent'}: no such kubeconfig; set it to an existing "
        "cluster's admin kubeconfig, or unset it to start kube-local.sh")
