"""The Kubernetes I/O of the reach check (:mod:`platformctl.core.reach`): the running server pods, and a
command run in one of them through the Kubernetes API's exec."""

from __future__ import annotations

from collections.abc import Sequence

from kubernetes import client as k8s
from kubernetes.stream import stream

from environment import EnvironmentSpec
from platformctl.core.reach import FETCH_TIMEOUT, Exec

from .rollout_io import REQUEST_TIMEOUT, server_selector

SERVER_CONTAINER = "vault"
"""The chart's name for the Vault container of a server pod (templates/server-statefulset.yaml)."""


def server_pods(api: k8s.ApiClient, spec: EnvironmentSpec) -> list[str]:
    """The release's running server pods, by name."""
    listed = k8s.CoreV1Api(api).list_namespaced_pod(
        namespace=spec.deployed.namespace, label_selector=server_selector(spec.deployed.release_name),
        _request_timeout=REQUEST_TIMEOUT)
    names = []
    for item in listed.items:
        if item.status is not None and item.status.phase == "Running" and item.metadata is not None:
            names.append(str(item.metadata.name))
    return sorted(names)


def pod_exec(api: k8s.ApiClient, namespace: str) -> Exec:
    """Runs a command in a server pod's Vault container (``pods/exec``), waiting for it to end."""
    core = k8s.CoreV1Api(api)

    def run(pod: str, command: Sequence[str]) -> tuple[int, str]:
        response = stream(core.connect_get_namespaced_pod_exec, pod, namespace, container=SERVER_CONTAINER,
                          command=list(command), stderr=True, stdin=False, stdout=True, tty=False,
                          _preload_content=False)
        response.run_forever(timeout=FETCH_TIMEOUT + REQUEST_TIMEOUT)
        errors = response.read_stderr()
        code = response.returncode
        response.close()
        return (code if code is not None else -1), errors

    return run
