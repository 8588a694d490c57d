"""The stack's alert rules: a Prometheus operator ``PrometheusRule`` next to Vault
(:mod:`components.render.alerts`); and who reaches the metrics: the metrics listener's service, which
the chart's ServiceMonitor (:func:`components.render.helm_values.service_monitor`) scrapes, and the
NetworkPolicy that admits Prometheus alone to it (:mod:`components.render.metrics`)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.environment import EnvironmentSpec
from components.options import children_of
from components.render.alerts import prometheus_rule_groups
from components.render.metrics import metrics_service, server_network_policy

PROMETHEUS_OPERATOR_API = "monitoring.coreos.com/v1"


class VaultAlerts(pulumi.ComponentResource):
    """Alerts on the servers, Raft, audit devices, the certificate, snapshots, leases, latency and
    the volumes; the Prometheus operator picks them up by the spec's ``prometheusLabels``."""

    def __init__(self, name: str, spec: EnvironmentSpec, namespace: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:monitoring:VaultAlerts", name, None, opts)
        assert spec.monitoring is not None
        k8s.apiextensions.CustomResource(
            f"{name}-rules",
            api_version=PROMETHEUS_OPERATOR_API,
            kind="PrometheusRule",
            metadata={"name": f"{spec.deployed.release_name}-alerts", "namespace": namespace,
                      "labels": dict(spec.monitoring.prometheus_labels)},
            spec=prometheus_rule_groups(spec),
            opts=children_of(self, opts),
        )
        self.register_outputs({})


class MetricsAccess(pulumi.ComponentResource):
    """Vault's metrics, without a token, for Prometheus alone: the headless service over every server's
    metrics listener, and the NetworkPolicy on the server pods."""

    def __init__(self, name: str, spec: EnvironmentSpec, namespace: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:monitoring:MetricsAccess", name, None, opts)
        child = children_of(self, opts)
        # The namespace as the cluster's output: created after it.
        service = metrics_service(spec)
        k8s.core.v1.Service(f"{name}-service", metadata={"name": service["metadata"]["name"], "namespace": namespace,
                                                          "labels": service["metadata"]["labels"]},
                            spec=service["spec"], opts=child)
        policy = server_network_policy(spec)
        k8s.networking.v1.NetworkPolicy(f"{name}-network-policy",
                                        metadata={"name": policy["metadata"]["name"], "namespace": namespace},
                                        spec=policy["spec"], opts=child)
        self.register_outputs({})
