"""Who may read Vault's metrics without a token: the metrics listener's service, which the chart's
ServiceMonitor scrapes, and the NetworkPolicy that opens that listener to Prometheus alone. Pure
functions of the spec, validated against the Kubernetes API schemas.

Vault serves ``/v1/sys/metrics`` without a token only on its metrics listener
(:data:`render.helm_values.METRICS_PORT`): the mount, policy and role names in the
metrics are then readable by whoever reaches that port, so the NetworkPolicy admits Prometheus's pods
there and nobody else, while the API port stays open to every client (agents, CI, people) and the
cluster port to the other servers.
"""

from __future__ import annotations

from typing import Any

from environment import EnvironmentSpec

from .helm_values import API_PORT, CHART, CLUSTER_PORT, METRICS_PORT, METRICS_SERVICE_LABEL, api_scheme, server_labels

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""The label the API server puts on every namespace, holding its name."""


def metrics_service(spec: EnvironmentSpec) -> dict[str, Any]:
    """A headless service over every server's metrics listener, sealed and unready ones included (a
    sealed server is never Ready, and its metrics are what say it is sealed). Its port carries the
    name the chart's ServiceMonitor scrapes (the scheme: ``https`` or ``http``); the ServiceMonitor
    finds it by the chart's name and instance labels and :data:`METRICS_SERVICE_LABEL`."""
    cluster = spec.deployed
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": f"{cluster.release_name}-metrics",
            "namespace": cluster.namespace,
            "labels": {"app.kubernetes.io/name": CHART, "app.kubernetes.io/instance": cluster.release_name,
                       METRICS_SERVICE_LABEL: "true"},
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "ports": [{"name": api_scheme(cluster), "port": METRICS_PORT, "targetPort": METRICS_PORT,
                       "protocol": "TCP"}],
            "selector": server_labels(cluster.release_name),
        },
    }


def server_network_policy(spec: EnvironmentSpec) -> dict[str, Any]:
    """Ingress to the server pods: the API from anywhere, the cluster port (Raft, request forwarding)
    from the other servers, the metrics listener from the Prometheus pods of Prometheus's namespace;
    nothing else. Egress is left alone (Vault reaches KMS, the identity providers, the database)."""
    assert spec.monitoring is not None
    cluster = spec.deployed
    servers = {"matchLabels": server_labels(cluster.release_name)}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{cluster.release_name}-server", "namespace": cluster.namespace},
        "spec": {
            "podSelector": servers,
            "policyTypes": ["Ingress"],
            "ingress": [
                {"ports": [{"port": API_PORT, "protocol": "TCP"}]},
                {"from": [{"podSelector": servers}], "ports": [{"port": CLUSTER_PORT, "protocol": "TCP"}]},
                {"from": [{"namespaceSelector": {"matchLabels": {
                    NAMESPACE_NAME_LABEL: spec.monitoring.prometheus_namespace}},
                           "podSelector": {"matchLabels": dict(spec.monitoring.prometheus_pod_labels)}}],
                 "ports": [{"port": METRICS_PORT, "protocol": "TCP"}]},
            ],
        },
    }
