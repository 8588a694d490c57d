"""Alert rules for one stack (a Prometheus operator ``PrometheusRule``), tested with ``promtool``.

Where each series comes from:

* ``vault_*``: every Vault server's own telemetry (``/v1/sys/metrics``), scraped by the chart's
  ServiceMonitor through the ``<release>-metrics`` service (all servers, standbys and sealed ones
  too: the metrics listener answers with the node's own metrics, unforwarded, and
  the core refreshes ``core.unsealed`` and ``core.active`` on every node). The leader alone
  reports leases and autopilot; its gauges linger on a former leader until the retention ends, so
  those rules only trust the node that is active now, and a removed node's until the retention ends
  too, so the voter rule only trusts nodes whose pod is still scraped.
* ``kube_*``: kube-state-metrics (the snapshot CronJob and its Jobs).
* ``kubelet_volume_stats_*``: the kubelets (the servers' volumes).
* ``certmanager_*``: cert-manager's own metrics (the server certificate), under either of its
  ServiceMonitor's ``honorLabels``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from environment import EnvironmentSpec
from environment.operations import SNAPSHOT_IDENTITY
from vaultmodel.durations import DAY

CERTIFICATE_WARNING_DAYS = 14
VOLUME_FREE_WARNING = 0.2
"""An alert fires when less than this share of a volume is free."""


@dataclass(frozen=True)
class Alert:
    """One alerting rule."""

    name: str
    """Alert name; the README's "Alerts" section has a line on what to do for each."""
    expr: str
    """PromQL."""
    for_: str
    """How long the condition must hold, e.g. ``5m`` (``0m``: at once)."""
    severity: str
    """``critical`` (page) or ``warning`` (ticket)."""
    summary: str
    """One line; may use ``{{ $labels.<name> }}`` of the alert's labels."""


def alerts(spec: EnvironmentSpec) -> tuple[Alert, ...]:
    """The stack's alerts: the servers, Raft, audit, certificate, snapshots, leases, latency, volumes."""
    assert spec.monitoring is not None
    cluster = spec.deployed
    ns = cluster.namespace
    vault = f'job="{cluster.release_name}-metrics",namespace="{ns}"'
    leader = f"on (pod) (vault_core_active{{{vault}}} == 1)"
    # The leader sets a node's gauge only while the node is in autopilot's state (physical/raft/
    # raft_autopilot.go, NotifyState); a removed one's last value stays exported for the retention
    # (24h). A node id is its pod's name (the chart's setNodeId): only a pod still scraped, down or
    # not, is a node that can be dead; a scaled-down pod leaves the headless service at once.
    scraped = f'on (node_id) label_replace(up{{{vault}}}, "node_id", "$1", "pod", "(.+)")'
    rules = [
        Alert("VaultSealed", f"vault_core_unsealed{{{vault}}} == 0", "2m", "critical",
              "Vault server {{ $labels.pod }} is sealed"),
        Alert("VaultMetricsDown", f"up{{{vault}}} == 0 or absent(up{{{vault}}})", "5m", "critical",
              f"Vault's metrics are not scraped in namespace {ns}: a server is down, or nothing is scraped"),
        Alert("VaultNoLeader", f"sum by (namespace) (vault_core_active{{{vault}}}) < 1", "1m", "critical",
              f"No Vault server in namespace {ns} is active: the cluster has no leader"),
        # Each change of leader flips two servers' gauge (one to 0, one to 1).
        Alert("VaultLeaderChanges", f"sum by (namespace) (changes(vault_core_active{{{vault}}}[1h])) > 4", "0m",
              "warning", f"Vault's leader in namespace {ns} changed more than twice in an hour"),
        Alert("VaultAutopilotUnhealthy",
              f"max by (namespace) ((vault_autopilot_healthy{{{vault}}} == 0) and {leader})", "5m", "critical",
              f"Raft autopilot reports the Vault cluster in namespace {ns} unhealthy"),
        Alert("VaultRaftVoterDead", f"(vault_autopilot_node_healthy{{{vault}}} == 0) and {leader} and {scraped}",
              "5m", "critical", "Raft voter {{ $labels.node_id }} is unhealthy (autopilot, as the leader sees it)"),
        Alert("VaultAuditLogFailing",
              f"sum by (namespace, pod) (increase(vault_audit_log_request_failure{{{vault}}}[5m])) > 0 or "
              f"sum by (namespace, pod) (increase(vault_audit_log_response_failure{{{vault}}}[5m])) > 0", "0m",
              "critical", "Vault server {{ $labels.pod }} failed to write to an audit device"),
        Alert("VaultLeaseCountHigh",
              f"max by (namespace) (vault_expire_num_leases{{{vault}}} and {leader}) "
              f"> {spec.monitoring.lease_threshold}", "15m", "warning",
              f"Vault in namespace {ns} holds more than {spec.monitoring.lease_threshold} leases"),
        Alert("VaultRequestLatencyHigh",
              f'max by (namespace) (vault_core_handle_request{{{vault},quantile="0.99"}}) '
              f"> {spec.monitoring.request_latency_ms}", "10m", "warning",
              f"Vault's 99th percentile request time in namespace {ns} is above "
              f"{spec.monitoring.request_latency_ms} ms"),
    ]
    if cluster.tls.enabled and cluster.tls.cert_manager_issuer is not None:
        rules.append(Alert(
            "VaultCertificateExpiring", f"{_certificate_expiry(ns, cluster.tls.secret_name)} - time() < "
            f"{CERTIFICATE_WARNING_DAYS * DAY}", "10m", "critical",
            f"Vault's server certificate {cluster.tls.secret_name} expires within {CERTIFICATE_WARNING_DAYS} days"))
    if spec.snapshots is not None:
        rules += _snapshot_alerts(ns, 2 * spec.snapshots.interval)
    for volume, what in (("audit", "audit log"), ("data", "Raft data")):
        rules += _volume_alerts(ns, f"{volume}-{cluster.release_name}-[0-9]+", volume.capitalize(), what)
    return tuple(rules)


def _certificate_expiry(ns: str, certificate: str) -> str:
    """The certificate's expiry time, labelled ``namespace`` and ``name``, under either scrape of
    cert-manager. Its metric carries the certificate's ``namespace`` (cert-manager v1.21
    internal/collectors/certificate_collector.go); with the ServiceMonitor's ``honorLabels: false``,
    cert-manager's chart default (deploy/charts/cert-manager/values.yaml), Prometheus keeps the
    target's namespace (cert-manager's own) as ``namespace`` and moves the metric's to
    ``exported_namespace``; with ``honorLabels: true`` the metric's stays ``namespace``."""
    metric = "certmanager_certificate_expiration_timestamp_seconds"
    exported = (f'label_replace({metric}{{exported_namespace="{ns}",name="{certificate}"}}, '
                f'"namespace", "$1", "exported_namespace", "(.+)")')
    honored = f'{metric}{{namespace="{ns}",exported_namespace="",name="{certificate}"}}'
    return f"max by (namespace, name) ({exported} or {honored})"


def _snapshot_alerts(ns: str, two_intervals: int) -> list[Alert]:
    cronjob = f'namespace="{ns}",cronjob="{SNAPSHOT_IDENTITY}"'
    jobs = f'namespace="{ns}",job_name=~"{SNAPSHOT_IDENTITY}-[0-9]+"'
    last_success = f"max by (namespace) (kube_cronjob_status_last_successful_time{{{cronjob}}})"
    created = f"max by (namespace) (kube_cronjob_created{{{cronjob}}})"
    return [
        # A failed run newer than the last success (or any failed run before a first success).
        Alert("VaultSnapshotFailed",
              f"max by (namespace) (kube_job_status_start_time{{{jobs}}} "
              f'* on (namespace, job_name) group_left () (kube_job_failed{{{jobs},condition="true"}} == 1)) '
              f"> on (namespace) ({last_success} or on (namespace) (0 * {created}))", "0m", "critical",
              f"The Raft snapshot job in namespace {ns} failed its last run"),
        Alert("VaultSnapshotMissing",
              f"time() - {last_success} > {two_intervals} or "
              f"(time() - {created} > {two_intervals} unless on (namespace) {last_success}) or "
              f"absent(kube_cronjob_created{{{cronjob}}})", "15m", "critical",
              f"No Raft snapshot succeeded in namespace {ns} for two intervals"),
    ]


def _volume_alerts(ns: str, claims: str, name: str, what: str) -> list[Alert]:
    selector = f'namespace="{ns}",persistentvolumeclaim=~"{claims}"'
    free = (f"kubelet_volume_stats_available_bytes{{{selector}}} / "
            f"kubelet_volume_stats_capacity_bytes{{{selector}}}")
    return [
        Alert(f"Vault{name}VolumeLow", f"{free} < {VOLUME_FREE_WARNING}", "5m", "warning",
              f"The {what} volume {{{{ $labels.persistentvolumeclaim }}}} is more than "
              f"{round((1 - VOLUME_FREE_WARNING) * 100)}% full"),
        Alert(f"Vault{name}VolumeFillingUp",
              f"predict_linear(kubelet_volume_stats_available_bytes{{{selector}}}[6h], {DAY}) < 0 and {free} < 0.5",
              "30m", "critical",
              f"The {what} volume {{{{ $labels.persistentvolumeclaim }}}} fills up within a day at this rate"),
    ]


def prometheus_rule_groups(spec: EnvironmentSpec) -> dict[str, Any]:
    """The rule file (also the ``PrometheusRule``'s spec): one group named after the stack."""
    return {"groups": [{
        "name": f"vault-{spec.stack}",
        "rules": [{
            "alert": alert.name,
            "expr": alert.expr,
            "for": alert.for_,
            "labels": {"severity": alert.severity},
            "annotations": {"summary": alert.summary, "runbook": f"README, Alerts: {alert.name}"},
        } for alert in alerts(spec)],
    }]}
