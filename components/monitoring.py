"""The stack's alert rules: a Prometheus operator ``PrometheusRule`` next to Vault
(:mod:`components.render.alerts`). The scrape itself is the chart's ServiceMonitor
(:func:`components.render.helm_values.service_monitor`)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.environment import EnvironmentSpec
from components.options import children_of
from components.render.alerts import prometheus_rule_groups

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
