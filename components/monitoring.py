"""The stack's alert rules: a Prometheus operator ``PrometheusRule`` next to Vault
(:mod:`render.alerts`); and who reaches the metrics: the metrics listener's service, which
the chart's ServiceMonitor (:func:`render.helm_values.service_monitor`) scrapes, and the
NetworkPolicy that admits Prometheus alone to it (:mod:`render.metrics`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.options import children_of
from environment import Monitoring

PROMETHEUS_OPERATOR_API = "monitoring.coreos.com/v1"


@dataclass(frozen=True)
class VaultAlertsArgs:
    """What :class:`VaultAlerts` declares."""

    namespace: pulumi.Input[str]
    """The namespace Vault runs in, as the cluster's output (the rules are created after it)."""
    release_name: str
    """The Helm release's name, which the rules' name starts with."""
    monitoring: Monitoring
    """The stack's monitoring section: the labels the Prometheus operator selects rules by."""
    rule_groups: Mapping[str, Any]
    """The rules (``render.alerts.prometheus_rule_groups``)."""


class VaultAlerts(pulumi.ComponentResource):
    """Alerts on the servers, Raft, audit devices, the certificate, snapshots, leases, latency and
    the volumes; the Prometheus operator picks them up by the spec's ``prometheusLabels``."""

    def __init__(self, name: str, args: VaultAlertsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:monitoring:VaultAlerts", name, None, opts)
        k8s.apiextensions.CustomResource(
            f"{name}-rules",
            api_version=PROMETHEUS_OPERATOR_API,
            kind="PrometheusRule",
            metadata={"name": f"{args.release_name}-alerts", "namespace": args.namespace,
                      "labels": dict(args.monitoring.prometheus_labels)},
            spec=dict(args.rule_groups),
            opts=children_of(self, opts),
        )
        self.register_outputs({})


@dataclass(frozen=True)
class MetricsAccessArgs:
    """What :class:`MetricsAccess` declares."""

    namespace: pulumi.Input[str]
    """The namespace Vault runs in, as the cluster's output (both are created after it)."""
    service: Mapping[str, Any]
    """The metrics service's manifest (``render.metrics.metrics_service``)."""
    network_policy: Mapping[str, Any]
    """The server pods' NetworkPolicy manifest (``render.metrics.server_network_policy``)."""


class MetricsAccess(pulumi.ComponentResource):
    """Vault's metrics, without a token, for Prometheus alone: the headless service over every server's
    metrics listener, and the NetworkPolicy on the server pods."""

    def __init__(self, name: str, args: MetricsAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:monitoring:MetricsAccess", name, None, opts)
        child = children_of(self, opts)
        namespace, service, policy = args.namespace, args.service, args.network_policy
        k8s.core.v1.Service(f"{name}-service", metadata={"name": service["metadata"]["name"], "namespace": namespace,
                                                          "labels": service["metadata"]["labels"]},
                            spec=service["spec"], opts=child)
        k8s.networking.v1.NetworkPolicy(f"{name}-network-policy",
                                        metadata={"name": policy["metadata"]["name"], "namespace": namespace},
                                        spec=policy["spec"], opts=child)
        self.register_outputs({})
