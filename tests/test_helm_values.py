"""The Helm values and Raft configuration, checked against the official chart's own schema and
defaults, and the server configuration parsed as HCL."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import jsonschema
import pytest
import yaml

from render.helm_values import (
    TLS_MOUNT_PATH,
    TLS_RELOADER_IMAGE,
    AuditLogRotation,
    helm_values,
    raft_config,
    sighup_script,
    tls_reload_script,
)
from tests.sidecar_loop import SidecarLoop, StandInServer, renew_certificate
from tests.support import ANY_STACK, COMMITTED, STACKS, any_stack, deployed_cluster, spec_of, spec_of_config

CHART = Path(__file__).resolve().parent / "reference" / "vault-helm"
# Keys whose values are free-form maps or lists in the chart (Kubernetes objects, annotations).
FREE_FORM = ("affinity", "resources", "extraEnvironmentVars", "annotations", "volumes", "volumeMounts",
             "podDisruptionBudget", "selectors", "matchLabels", "tlsConfig")


def chart_schema() -> dict[str, Any]:
    return dict(json.loads((CHART / "values.schema.json").read_text()))


def chart_defaults() -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / "values.yaml").read_text()))


def parse_raft(stack: str, **changes: Any) -> dict[str, Any]:
    return dict(hcl2.loads(raft_config(spec_of(stack, changes or None))))


def unquote(value: str) -> str:
    return value[1:-1] if value.startswith('"') else value


class TestAgainstTheChart:
    def test_reference_is_the_pinned_chart(self) -> None:
        chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
        assert (chart["version"], chart["appVersion"]) == ("0.34.1", "2.0.4")
        deployed = [spec_of_config(any_stack(stack)).cluster for stack in COMMITTED]
        assert {cluster.chart_version for cluster in deployed if cluster is not None} <= {chart["version"]}

    @pytest.mark.parametrize("stack", ANY_STACK)
    def test_values_validate_against_the_chart_schema(self, stack: str) -> None:
        deployed_cluster(stack)
        # The chart's schema names draft-07 by an https URL jsonschema does not map: say it outright.
        jsonschema.Draft7Validator(chart_schema()).validate(helm_values(spec_of_config(any_stack(stack))))

    def test_schema_check_can_fail(self) -> None:
        values = helm_values(spec_of("prod"))
        values["server"]["ha"]["replicas"] = "five"
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft7Validator(chart_schema()).validate(values)

    @pytest.mark.parametrize("stack", ANY_STACK)
    def test_every_key_is_one_the_chart_declares(self, stack: str) -> None:
        deployed_cluster(stack)
        unknown = list(_unknown_keys(helm_values(spec_of_config(any_stack(stack))), chart_defaults(), ""))
        assert unknown == []

    def test_unknown_key_check_can_fail(self) -> None:
        assert list(_unknown_keys({"server": {"haa": {}}}, chart_defaults(), "")) == ["server.haa"]


def _unknown_keys(values: dict[str, Any], defaults: dict[str, Any], prefix: str) -> list[str]:
    found = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in defaults:
            found.append(path)
        elif isinstance(value, dict) and isinstance(defaults[key], dict) and key not in FREE_FORM:
            found += _unknown_keys(value, defaults[key], f"{path}.")
    return found


class TestHighAvailability:
    @pytest.mark.parametrize(("stack", "replicas", "max_unavailable"), [("dev", 1, 1), ("staging", 3, 1),
                                                                        ("prod", 5, 2)])
    def test_ha_raft_with_node_ids_and_a_budget(self, stack: str, replicas: int, max_unavailable: int) -> None:
        server = helm_values(spec_of(stack))["server"]
        assert server["ha"]["enabled"] is True
        assert server["ha"]["replicas"] == replicas
        assert server["ha"]["raft"]["enabled"] is True
        assert server["ha"]["raft"]["setNodeId"] is True
        assert server["ha"]["disruptionBudget"] == {"enabled": True, "maxUnavailable": max_unavailable}
        assert server["standalone"] == {"enabled": False}
        assert server["includeConfigAnnotation"] is True

    def test_servers_never_share_a_node(self) -> None:
        rule = helm_values(spec_of("prod"))["server"]["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"][0]
        assert rule["topologyKey"] == "kubernetes.io/hostname"
        assert rule["labelSelector"]["matchLabels"] == {
            "app.kubernetes.io/name": "vault", "app.kubernetes.io/instance": "vault", "component": "server"}

    @pytest.mark.parametrize(("stack", "replicas"), [("dev", 1), ("staging", 2), ("prod", 3)])
    def test_injector(self, stack: str, replicas: int) -> None:
        injector = helm_values(spec_of(stack))["injector"]
        assert injector["enabled"] is True
        assert injector["replicas"] == replicas
        assert injector["authPath"] == "auth/kubernetes"
        assert ("podDisruptionBudget" in injector) is (replicas > 1)

    @pytest.mark.parametrize(("stack", "data", "audit"), [("dev", "1Gi", "1Gi"), ("prod", "50Gi", "50Gi")])
    def test_storage_and_resources(self, stack: str, data: str, audit: str) -> None:
        server = helm_values(spec_of(stack))["server"]
        assert (server["dataStorage"]["enabled"], server["dataStorage"]["size"]) == (True, data)
        assert (server["auditStorage"]["enabled"], server["auditStorage"]["size"]) == (True, audit)
        assert server["auditStorage"]["mountPath"] == "/vault/audit"

    def test_prod_resources(self) -> None:
        assert helm_values(spec_of("prod"))["server"]["resources"] == {
            "requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}


class TestTls:
    def test_prod_serves_tls_from_the_mounted_secret(self) -> None:
        values = helm_values(spec_of("prod"))
        assert values["global"]["tlsDisable"] is False
        assert values["server"]["volumes"] == [{"name": "vault-tls", "secret": {"secretName": "vault-tls"}}]
        assert values["server"]["volumeMounts"] == [
            {"name": "vault-tls", "mountPath": "/vault/userconfig/vault-tls", "readOnly": True}]
        assert values["server"]["extraEnvironmentVars"] == {"VAULT_CACERT": "/vault/userconfig/vault-tls/ca.crt"}

    def test_dev_may_turn_tls_off(self) -> None:
        values = helm_values(spec_of("dev"))
        assert values["global"]["tlsDisable"] is True
        assert "volumes" not in values["server"]
        listener = parse_raft("dev")["listener"][0]['"tcp"']
        assert listener["tls_disable"] == 1


class TestRaftConfig:
    @pytest.mark.parametrize("stack", STACKS)
    def test_one_retry_join_per_replica(self, stack: str) -> None:
        spec = spec_of(stack)
        raft = parse_raft(stack)["storage"][0]['"raft"']
        scheme = "https" if spec.deployed.tls.enabled else "http"
        assert [unquote(join["leader_api_addr"]) for join in raft["retry_join"]] == [
            f"{scheme}://vault-{i}.vault-internal:8200" for i in range(spec.deployed.replicas)]
        assert unquote(raft["path"]) == "/vault/data"

    def test_tls_peers_are_verified(self) -> None:
        joins = parse_raft("staging")["storage"][0]['"raft"']["retry_join"]
        assert [(unquote(j["leader_ca_cert_file"]), unquote(j["leader_tls_servername"])) for j in joins] == [
            ("/vault/userconfig/vault-tls/ca.crt", f"vault-{i}.vault-internal") for i in range(3)]
        listener = parse_raft("staging")["listener"][0]['"tcp"']
        assert unquote(listener["tls_cert_file"]) == "/vault/userconfig/vault-tls/tls.crt"
        assert "tls_disable" not in listener

    def test_kubernetes_service_registration(self) -> None:
        assert '"kubernetes"' in parse_raft("prod")["service_registration"][0]

    def test_awskms_seal_and_irsa(self) -> None:
        seal = parse_raft("prod")["seal"][0]['"awskms"']
        assert (unquote(seal["region"]), unquote(seal["kms_key_id"])) == ("eu-west-1", "alias/vault-prod-unseal")
        annotations = helm_values(spec_of("prod"))["server"]["serviceAccount"]["annotations"]
        assert annotations == {"eks.amazonaws.com/role-arn": "arn:aws:iam::222222222222:role/vault-prod-unseal"}

    def test_no_seal_without_auto_unseal(self) -> None:
        assert "seal" not in parse_raft("dev")
        assert "serviceAccount" not in helm_values(spec_of("dev"))["server"]

    def test_release_name_shapes_peer_addresses(self) -> None:
        config = raft_config(spec_of("staging", {"vault-platform:cluster.releaseName": "secrets"}))
        assert '"https://secrets-2.secrets-internal:8200"' in config


class TestTlsRenewal:
    """A renewed certificate takes effect without a restart: a sidecar signals Vault (SIGHUP) when the
    mounted secret changes (vault-helm 0.34.1: server.extraContainers and server.shareProcessNamespace)."""

    def test_tls_stacks_run_the_reloader_beside_vault(self) -> None:
        server = helm_values(spec_of("prod"))["server"]
        assert server["shareProcessNamespace"] is True
        rotation = AuditLogRotation(files=("/vault/audit/vault-audit.log",), max_bytes=100 * 2**20, retention_days=30)
        assert server["extraContainers"] == [{
            "name": "vault-sighup",
            "image": "hashicorp/vault:2.0.4",
            "imagePullPolicy": "IfNotPresent",
            "command": ["/bin/sh", "-c", sighup_script("/vault/userconfig/vault-tls", rotation)],
            "volumeMounts": [{"name": "vault-tls", "mountPath": "/vault/userconfig/vault-tls", "readOnly": True},
                             {"name": "audit", "mountPath": "/vault/audit"}],
            "resources": {"requests": {"cpu": "5m", "memory": "8Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
        }]
        # It watches the very files the listener serves.
        assert {"name": "vault-tls", "mountPath": TLS_MOUNT_PATH, "readOnly": True} in server["volumeMounts"]
        listener = parse_raft("prod")["listener"][0]['"tcp"']
        assert (unquote(listener["tls_cert_file"]), unquote(listener["tls_key_file"])) == (
            f"{TLS_MOUNT_PATH}/tls.crt", f"{TLS_MOUNT_PATH}/tls.key")

    def test_without_tls_it_only_rotates_the_audit_log(self) -> None:
        (sidecar,) = helm_values(spec_of("dev"))["server"]["extraContainers"]
        assert sidecar["volumeMounts"] == [{"name": "audit", "mountPath": "/vault/audit"}]
        assert "sha256sum" not in sidecar["command"][2]

    def test_without_tls_and_without_an_audit_file_nothing_to_signal(self) -> None:
        server = helm_values(spec_of("dev", {"vault-platform:audit.devices": [
            {"path": "stdout", "filePath": "stdout"}]}))["server"]
        assert "extraContainers" not in server
        assert "shareProcessNamespace" not in server

    def test_the_reloader_runs_the_charts_own_server_image(self) -> None:
        image = chart_defaults()["server"]["image"]
        assert f"{image['repository']}:{image['tag']}" == TLS_RELOADER_IMAGE

    def test_the_script(self) -> None:
        assert tls_reload_script("/certs", interval_seconds=30) == (
            'files="/certs/tls.crt /certs/tls.key"\n'
            'before="$(sha256sum $files)"\n'
            'loaded=""\n'
            'seen=""\n'
            "while sleep 30; do\n"
            '  current="$(sha256sum $files)" || continue\n'
            '  pid="$(pgrep -o -x vault)" || pid=""\n'
            '  if [ "$pid" != "$seen" ]; then\n'
            '    seen="$pid"\n'
            '    loaded="$before"\n'
            '  elif [ -n "$pid" ] && [ "$current" != "$loaded" ]; then\n'
            '    kill -HUP $pid && loaded="$current" && echo "certificate changed: sent SIGHUP to vault (pid $pid)"\n'
            "  fi\n"
            '  before="$current"\n'
            "done\n")


class ReloadRun:
    """The reload loop, driven round by round, beside a stand-in server started on demand."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        renew_certificate(directory, 1)
        self.server = StandInServer(directory, "vrl")
        # The interval the chart runs: the stand-in `sleep` ignores it.
        self.loop = SidecarLoop(tls_reload_script(str(directory), self.server.name), directory)

    def start_server(self) -> None:
        self.server.start("while :; do sleep 0.02; done")

    def renew(self, serial: int) -> None:
        renew_certificate(self.directory, serial)

    def signalled(self) -> str:
        return f"certificate changed: sent SIGHUP to {self.server.name} (pid {self.server.pid})"

    def stop(self) -> None:
        self.loop.stop()
        self.server.stop()


@pytest.fixture
def reload_run(tmp_path: Path) -> Iterator[ReloadRun]:
    run = ReloadRun(tmp_path)
    yield run
    run.stop()


class TestTlsReloadLoop:
    """The script under a real shell, round by round (``tests/sidecar_loop.py``): each round's log is
    every SIGHUP it sent, and the server's own count of handled signals matches it."""

    def test_one_sighup_per_renewal_and_none_before(self, reload_run: ReloadRun) -> None:
        reload_run.start_server()
        assert reload_run.loop.rounds(3) == []  # nothing at start, nothing while the files stay
        reload_run.renew(2)
        assert reload_run.loop.round() == [reload_run.signalled()]
        assert reload_run.loop.rounds(3) == []
        assert reload_run.server.handled(1) == 1
        reload_run.renew(3)
        assert reload_run.loop.rounds(3) == [reload_run.signalled()]
        assert reload_run.server.handled(2) == 2

    def test_nothing_to_signal_without_a_server(self, reload_run: ReloadRun) -> None:
        reload_run.renew(2)
        assert reload_run.loop.rounds(3) == []

    def test_a_server_that_starts_after_a_renewal_is_not_signalled(self, reload_run: ReloadRun) -> None:
        reload_run.renew(2)
        assert reload_run.loop.round() == []
        reload_run.start_server()  # it reads the renewed files itself
        assert reload_run.loop.rounds(3) == []
        reload_run.renew(3)
        assert reload_run.loop.round() == [reload_run.signalled()]
        assert reload_run.server.handled(1) == 1

    def test_a_renewal_in_the_round_the_server_starts_costs_one_extra_reload(self, reload_run: ReloadRun) -> None:
        # The loop cannot tell whether the server read the files before or after the renewal, so it
        # takes the older ones: one reload a round later, never a missed one.
        reload_run.renew(2)
        reload_run.start_server()
        assert reload_run.loop.round() == []  # first seen: never signalled in that round
        assert reload_run.loop.round() == [reload_run.signalled()]
        assert reload_run.loop.rounds(3) == []
        assert reload_run.server.handled(1) == 1

    @pytest.mark.parametrize("rounds_while_down", [0, 1], ids=["gap-unseen", "gap-seen"])
    def test_a_restart_alone_is_not_signalled(self, reload_run: ReloadRun, rounds_while_down: int) -> None:
        reload_run.start_server()
        assert reload_run.loop.rounds(2) == []
        first = reload_run.server.pid
        reload_run.server.stop()
        assert reload_run.loop.rounds(rounds_while_down) == []
        reload_run.start_server()  # a new process
        assert reload_run.server.pid != first
        assert reload_run.loop.rounds(3) == []
        reload_run.renew(2)
        assert reload_run.loop.round() == [reload_run.signalled()]
        assert reload_run.server.handled(1) == 1

    def test_the_oldest_process_of_the_name_is_signalled(self, reload_run: ReloadRun) -> None:
        # Vault forks children of its own name for a moment; the server is the oldest.
        reload_run.start_server()
        assert reload_run.loop.round() == []
        # pgrep compares start times in clock ticks (10 ms): the child starts at least two later.
        time.sleep(0.02)
        child = subprocess.Popen([str(reload_run.server.binary), "-c", "while :; do sleep 0.02; done"])
        try:
            reload_run.renew(2)
            assert reload_run.loop.round() == [reload_run.signalled()]
        finally:
            child.kill()
            child.wait()
        assert child.returncode == -signal.SIGKILL  # the child was never sent the SIGHUP that ends it

    def test_the_server_dies_of_an_unhandled_sighup(self, tmp_path: Path) -> None:
        # Why the loop never signals at start: before a process handles SIGHUP, the signal ends it.
        process = subprocess.Popen(["sleep", "5"])
        process.send_signal(signal.SIGHUP)
        assert process.wait(timeout=5) == -signal.SIGHUP
