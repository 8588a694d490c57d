"""The rollout's I/O, kept thin: the official ``kubernetes`` client reads the server StatefulSet and
its pods and deletes one pod; ``hvac`` asks each server's Vault HTTP API for its health, the active
one for autopilot's state, and steps it down. Every request has a timeout. What to do is decided
in :mod:`platformctl.core.rollout`.

Addresses, from the vault-helm chart (templates/server-statefulset.yaml): the StatefulSet is named
after the release (``vault.fullname``) and selects its pods with ``app.kubernetes.io/name=vault``,
``app.kubernetes.io/instance=<release>``, ``component=server``; each server advertises its pod IP as
``VAULT_API_ADDR`` (``<scheme>://$(POD_IP):8200``), which is where this module reaches it, so the
command runs where pod IPs are routable (the in-VPC deploy runner on EKS, or inside the cluster).
Over TLS the certificate is checked for ``<pod>.<release>-internal``, the name the servers'
``retry_join`` checks (``leader_tls_servername``) and the certificate carries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, cast

import hvac  # type: ignore[import-untyped]
import requests
from hvac.exceptions import VaultError  # type: ignore[import-untyped]
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from environment import Cluster
from platformctl.core.rollout import (
    Observed,
    Pod,
    RaftServer,
    RaftState,
    Replace,
    StepDown,
    VaultHealth,
    active_pods,
    ordinal,
)
from render.helm_values import API_PORT, api_scheme, raft_peer_host, server_labels

REQUEST_TIMEOUT = 10
"""Seconds any one request to the Kubernetes API or to Vault may take."""
AUTOPILOT_STATE = "/v1/sys/storage/raft/autopilot/state"
"""Vault's autopilot state endpoint; hvac 2.4.0's ``Raft`` backend has no method for it, so it is
read through the client's adapter (same headers, token, TLS and timeout)."""
REVISION_LABEL = "controller-revision-hash"

ConfigException = k8s_config.ConfigException

__all__ = ["ApiException", "ConfigException", "ServerSet", "VaultError"]


def server_selector(release: str) -> str:
    """The label selector of the release's server pods (the StatefulSet's ``matchLabels``)."""
    return ",".join(f"{key}={value}" for key, value in server_labels(release).items())


def pod_state(pod: k8s.V1Pod, health: VaultHealth | None) -> Pod:
    """The rollout's view of a pod object."""
    metadata, status = pod.metadata, pod.status
    assert metadata is not None
    assert metadata.name is not None
    conditions = (status.conditions if status is not None else None) or []
    return Pod(
        name=metadata.name,
        uid=metadata.uid or "",
        revision=(metadata.labels or {}).get(REVISION_LABEL, ""),
        ready=any(condition.type == "Ready" and condition.status == "True" for condition in conditions),
        terminating=metadata.deletion_timestamp is not None,
        health=health,
    )


def health_of(body: Mapping[str, Any]) -> VaultHealth:
    """A ``sys/health`` body (Vault's API docs, /sys/health: sent with every status code for GET)."""
    return VaultHealth(initialized=bool(body.get("initialized", False)), sealed=bool(body.get("sealed", True)),
                       standby=bool(body.get("standby", False)))


def raft_state_of(body: Mapping[str, Any]) -> RaftState:
    """An autopilot state response: ``data`` holds Vault's ``AutopilotState`` (physical/raft/
    raft_autopilot.go: ``healthy``, ``failure_tolerance``, ``leader``, ``servers`` by node id with
    ``id``, ``status`` and ``healthy``)."""
    data = body["data"]
    servers = tuple(sorted(
        (RaftServer(node_id=str(server["id"]), status=server["status"], healthy=bool(server["healthy"]))
         for server in (data.get("servers") or {}).values()),
        key=lambda server: server.node_id))
    return RaftState(healthy=bool(data["healthy"]), failure_tolerance=int(data["failure_tolerance"]),
                     leader=str(data.get("leader") or ""), servers=servers)


class _ServerNameAdapter(requests.adapters.HTTPAdapter):
    """Connects to a pod IP and checks the certificate for the server's name, as ``retry_join`` does."""

    def __init__(self, server_name: str) -> None:
        self.server_name = server_name
        super().__init__()

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, server_hostname=self.server_name,
                                 assert_hostname=self.server_name, **pool_kwargs)


def vault_client(cluster: Cluster, pod: str, pod_ip: str, ca_cert: str | None, token: str | None,
                 timeout: float = REQUEST_TIMEOUT) -> Any:
    """An hvac client for one server at its pod IP. Its adapter returns every response as is
    (``RawAdapter``): ``sys/health`` answers 429, 472, 473, 501 and 503 with a body that matters."""
    session = requests.Session()
    # hvac's Adapter takes ``verify`` from a session it is given (session.verify, True by default)
    # over its own ``verify`` argument (hvac/adapters.py, "fix for issue 991"): set it here.
    session.verify = ca_cert if ca_cert else True
    if cluster.tls.enabled:
        session.mount("https://", _ServerNameAdapter(raft_peer_host(cluster, ordinal(pod))))
    host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip
    return hvac.Client(url=f"{api_scheme(cluster)}://{host}:{API_PORT}", token=token, timeout=timeout,
                       session=session, adapter=hvac.adapters.RawAdapter)


def kubernetes_api() -> k8s.ApiClient:
    """A client from the kubeconfig (``KUBECONFIG``), or the pod's service account inside a cluster."""
    try:
        return cast(k8s.ApiClient, k8s_config.new_client_from_config())  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        configuration = k8s.Configuration()
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return k8s.ApiClient(configuration)


class ServerSet:
    """The release's Vault servers, observed and acted on."""

    def __init__(self, cluster: Cluster, api: k8s.ApiClient, ca_cert: str | None, token: str | None,
                 timeout: float = REQUEST_TIMEOUT) -> None:
        self._cluster = cluster
        self._apps = k8s.AppsV1Api(api)
        self._core = k8s.CoreV1Api(api)
        self._ca_cert = ca_cert
        self._token = token
        self._timeout = timeout
        self._clients: dict[str, Any] = {}

    def observe(self) -> Observed:
        cluster = self._cluster
        statefulset = self._apps.read_namespaced_stateful_set(
            name=cluster.release_name, namespace=cluster.namespace, _request_timeout=self._timeout)
        listed = self._core.list_namespaced_pod(
            namespace=cluster.namespace, label_selector=server_selector(cluster.release_name),
            _request_timeout=self._timeout)
        self._clients = {}
        pods = []
        for item in listed.items:
            pod = pod_state(item, None)
            ip = item.status.pod_ip if item.status is not None else None
            if ip:
                self._clients[pod.name] = vault_client(cluster, pod.name, ip, self._ca_cert, self._token,
                                                       self._timeout)
            pods.append(dataclasses.replace(pod, health=self._health(pod.name)))
        pods.sort(key=lambda pod: ordinal(pod.name))
        spec, status = statefulset.spec, statefulset.status
        generation = statefulset.metadata.generation if statefulset.metadata is not None else None
        observed = Observed(
            replicas=spec.replicas if spec is not None and spec.replicas is not None else 1,
            update_revision=(status.update_revision if status is not None else None) or "",
            current_spec_observed=status is not None and (status.observed_generation or 0) >= (generation or 0),
            pods=tuple(pods),
            raft=None,
        )
        active = active_pods(observed)
        if len(active) != 1:
            return observed
        try:
            response = self._clients[active[0].name].adapter.get(AUTOPILOT_STATE)
            raft = raft_state_of(response.json())
        except (VaultError, requests.RequestException, ValueError, KeyError) as error:
            problem = f"{AUTOPILOT_STATE} on {active[0].name}: {error or type(error).__name__}"
            return dataclasses.replace(observed, raft_error=f"{problem} (the token needs read on "
                                                            "sys/storage/raft/autopilot/state)")
        return dataclasses.replace(observed, raft=raft)

    def _health(self, pod: str) -> VaultHealth | None:
        vault = self._clients.get(pod)
        if vault is None:
            return None
        try:
            return health_of(vault.sys.read_health_status(method="GET").json())
        except (requests.RequestException, ValueError):
            return None

    def replace(self, step: Replace) -> None:
        """Deletes the pod, only if it is still the one observed (a uid precondition)."""
        self._core.delete_namespaced_pod(
            name=step.pod, namespace=self._cluster.namespace,
            body=k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(uid=step.uid)),
            _request_timeout=self._timeout)

    def step_down(self, step: StepDown) -> None:
        """``PUT sys/step-down`` on the active pod itself (needs ``sudo`` on ``sys/step-down``)."""
        self._clients[step.pod].sys.step_down()
