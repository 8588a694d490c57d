"""The real tools and the servers the end-to-end tests share: found once, started once per test
session (a Kubernetes API, the chart's repository behind an HTTPS proxy), always stopped."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client as kubernetes_client

from render.helm_values import CHART_REPOSITORY
from tests.e2e.external import NEEDS_ROOT, AppliedExternal, applied_external
from tests.e2e.servers import Cluster, ConnectProxy, HttpsFiles, KubeCluster, ca_bundle, existing_cluster, running
from tests.e2e.tools import HOW_TO_GET_THEM, SHARED_TOOLS, Tools, find_tools, required
from tests.postgres.server import ServerTls

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
CHART_HOST = CHART_REPOSITORY.removeprefix("https://").rstrip("/")
# The CustomResourceDefinitions the stacks' objects need, as the cluster's cert-manager and Prometheus
# operator install them (tests/reference holds their upstream files).
CRD_FILES = (REFERENCE / "cert-manager" / "cert-manager.io_certificates.yaml",
             REFERENCE / "prometheus-operator" / "monitoring.coreos.com_prometheusrules.yaml")


SKIPPED = "end-to-end tests skipped: "
_TOOLS_LINE = next(number for number, line in enumerate(Path(__file__).read_text().splitlines(), 1)
                   if line.startswith("def tools("))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Every end-to-end test skipped for want of the tools is reported at one place, so the run's summary
    says it in one line (pytest folds skips by place and reason)."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and isinstance(report.longrepr, tuple) and report.longrepr[2].startswith(
            f"Skipped: {SKIPPED}"):
        report.longrepr = (__file__, _TOOLS_LINE, report.longrepr[2])


@pytest.fixture(scope="session")
def tools() -> Tools:
    found, missing = find_tools()
    if found is None:
        message = f"the real tools are missing ({', '.join(missing)}): {HOW_TO_GET_THEM}"
        if required():
            pytest.fail(message, pytrace=False)
        pytest.skip(SKIPPED + message)
    return found


@pytest.fixture(scope="session")
def kube_tools(tools: Tools) -> Tools:
    if tools.kube_local is None:
        message = f"kube-local.sh or the Kubernetes binaries are missing: {HOW_TO_GET_THEM}"
        if required():
            pytest.fail(message, pytrace=False)
        pytest.skip(f"{SKIPPED}{message}")
    return tools


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A Kubernetes API with the stacks' CRDs applied: the existing cluster ``$VAULT_PLATFORM_E2E_KUBECONFIG``
    names (the GitHub workflow's kind, whose pods run), else a loopback one whose pods become Ready."""
    try:
        existing = existing_cluster(os.environ)
    except FileNotFoundError as error:
        pytest.fail(str(error), pytrace=False)
    if existing is not None:
        apply_crds(existing)
        yield existing
        return
    kube_tools: Tools = request.getfixturevalue("kube_tools")  # only a cluster of our own needs them
    with kube_local(kube_tools, tmp_path_factory.mktemp("kube")) as kube:
        yield kube


@contextlib.contextmanager
def kube_local(kube_tools: Tools, directory: Path) -> Iterator[KubeCluster]:
    """A kube-local cluster in ``directory``, with the stacks' CRDs; stopped after."""
    assert kube_tools.kube_local is not None
    kube = KubeCluster(kube_tools.kube_local, kube_tools.kube_bin, directory)
    # kube-local picks free ports, which two workers starting at once could both pick: one start at a time.
    try:
        with start_lock():
            kube.start()
        apply_crds(kube)
        yield kube
    finally:
        kube.stop()


def apply_crds(cluster: Cluster) -> None:
    """Creates the stacks' CRDs; one already there (another worker's session made it) is kept."""
    api = kubernetes_client.ApiextensionsV1Api(cluster.api())
    for document in [*(yaml.safe_load(path.read_text()) for path in CRD_FILES), SERVICE_MONITOR_CRD]:
        try:
            api.create_custom_resource_definition(cast(Any, document))
        except kubernetes_client.ApiException as error:
            if error.status != 409:
                raise


@pytest.fixture(scope="module")
def external(tools: Tools, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppliedExternal]:
    """The e2e-prod stack on an external Vault (:func:`tests.e2e.external.applied_external`), one per module
    that asks for it: the module's tests change it in turn."""
    if os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)
    with applied_external(tools, cluster, tmp_path_factory.mktemp("external")) as applied:
        yield applied


@pytest.fixture(scope="session")
def chart_repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The chart's repository (``../shared/tools/chart-repo``: its ``index.yaml`` and package) served over
    HTTPS under its own name through an HTTPS proxy: the environment a CLI run needs to reach it. Without
    that copy (GitHub's runner, which has the network), nothing: the CLI reaches the repository itself."""
    copy = SHARED_TOOLS / "chart-repo"
    if not copy.is_dir():
        yield {}
        return
    directory = tmp_path_factory.mktemp("chart-repository")
    tls = ServerTls.throwaway(CHART_HOST, "vault-platform e2e chart repository CA")
    files = {f"/{path.name}": path.read_bytes() for path in copy.iterdir() if path.is_file()}
    server = HttpsFiles(tls, directory, files)
    proxy = ConnectProxy({CHART_HOST: server.port})
    with running(server, proxy):
        yield {"HTTPS_PROXY": proxy.url, "SSL_CERT_FILE": str(ca_bundle(directory, tls.ca_pem))}


@contextlib.contextmanager
def start_lock() -> Iterator[None]:
    """Held while a cluster starts, across the test session's workers (one file in the temp directory)."""
    with (Path(tempfile.gettempdir()) / "vault-platform-e2e-kube-start.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# A stand-in for the Prometheus operator's ServiceMonitor CRD (the chart renders one in staging and prod):
# the kind must exist for the release to install; its schema is not what these tests check.
SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
             "names": {"kind": "ServiceMonitor", "listKind": "ServiceMonitorList", "plural": "servicemonitors",
                       "singular": "servicemonitor"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}
