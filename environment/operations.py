"""The snapshots, monitoring and audit log rotation sections of the stack config: what keeps an
environment recoverable and watched.

Called by :func:`environment.loader.load_spec` and
:func:`environment.sections.load_audit`; every refusal is one :class:`SpecError` naming the key.
"""

from __future__ import annotations

import re

from vaultmodel import rules
from vaultmodel.durations import DAY, HOUR, format_duration

from ._reader import AWS_REGION, K8S_LABEL, QUANTITY, Node, check_name, quantity
from .model import AuditRotation, Monitoring, Snapshots, Tier

SNAPSHOT_IDENTITY = "vault-snapshot"
"""The snapshot job's name everywhere: Kubernetes service account and CronJob, Vault Kubernetes auth
role and ACL policy. Reserved: no application or declared policy may take it."""
# Whole hours dividing a day: the CronJob runs at the same minutes every day, and "two intervals
# without a snapshot" is a fixed time.
SNAPSHOT_INTERVALS = tuple(hours * HOUR for hours in (1, 2, 3, 4, 6, 8, 12, 24))
DEFAULT_SNAPSHOT_INTERVAL: dict[Tier, int] = {"dev": 24 * HOUR, "staging": 6 * HOUR, "prod": HOUR}
DEFAULT_SNAPSHOT_RETENTION: dict[Tier, int] = {"dev": 3 * DAY, "staging": 14 * DAY, "prod": 30 * DAY}
DEFAULT_AUDIT_RETENTION: dict[Tier, int] = {"dev": DAY, "staging": 7 * DAY, "prod": 30 * DAY}
DEFAULT_AUDIT_MAX_FILE = "100Mi"
DEFAULT_PROMETHEUS_LABELS = {"release": "prometheus"}  # what the chart's ServiceMonitor carries by default
DEFAULT_PROMETHEUS_NAMESPACE = "monitoring"
# What the Prometheus operator puts on every Prometheus pod it runs (prometheus-operator,
# pkg/prometheus/server/statefulset.go: the pod selector labels).
DEFAULT_PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus",
                                 "app.kubernetes.io/managed-by": "prometheus-operator"}
DEFAULT_LEASE_THRESHOLD = 100_000
DEFAULT_REQUEST_LATENCY_MS = 1000
# Vault ends a request after max_request_duration, 90s by default: a slower threshold never fires.
MAX_REQUEST_LATENCY_MS = 90_000
MAX_REQUEST_LATENCY_WHY = "Vault ends a request after 90s, so a slower threshold never fires"
# S3 bucket names without dots (dots break TLS to virtual-hosted bucket addresses).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
ROLE_ARN = re.compile(r"arn:aws[-a-z]*:iam::\d{12}:role/[\w+=,.@/-]+")
AUDIT_FILE_UNITS = ("Ki", "Mi", "Gi")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
# A label key: an optional DNS prefix and '/', then a name of at most 63 characters.
_LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


def load_snapshots(node: Node, tier: Tier) -> Snapshots | None:
    """The ``snapshots`` section: required in staging and prod, optional in dev."""
    if not node.keys():
        if (problem := rules.snapshots_taken(False, tier)) is not None:
            raise node.error(None, f"is not set: the stack {problem}",
                             "declare snapshots: {bucket: <name>, region: <region>, roleArn: <IAM role ARN>} "
                             "and run `platformctl bootstrap-state` to create the bucket")
        return None
    interval = node.duration("interval", DEFAULT_SNAPSHOT_INTERVAL[tier])
    if interval not in SNAPSHOT_INTERVALS:
        raise node.error("interval", f"{node.written('interval', interval)} is not a whole number of hours "
                         "dividing a day",
                         f"use one of {', '.join(format_duration(i) for i in SNAPSHOT_INTERVALS)}")
    retention = node.duration("retention", DEFAULT_SNAPSHOT_RETENTION[tier])
    if retention % DAY:
        raise node.error("retention", f"{node.written('retention', retention)} is not a whole number of days (S3 "
                         "expires objects by the day)", "write it in days, e.g. 30d")
    if retention < max(2 * interval, DAY):
        raise node.error("retention", f"{node.written('retention', retention)} keeps less than two snapshots or a day",
                         f"keep them at least {format_duration(max(2 * interval, DAY))}")
    bucket = node.string("bucket")
    if not _BUCKET.fullmatch(bucket) or "--" in bucket:
        raise node.error("bucket", f"{bucket!r} is not a valid S3 bucket name",
                         "use 3-63 lowercase letters, digits and single hyphens (no dots)")
    role_arn = node.string("roleArn")
    if not ROLE_ARN.fullmatch(role_arn):
        raise node.error("roleArn", f"{role_arn!r} is not an IAM role ARN", "use arn:aws:iam::<account>:role/<name>")
    snapshots = Snapshots(interval=interval, retention_days=retention // DAY, bucket=bucket,
                          region=node.string("region", rule=AWS_REGION), role_arn=role_arn)
    node.done()
    return snapshots


def load_monitoring(node: Node, tier: Tier) -> Monitoring | None:
    """The ``monitoring`` section: on in staging and prod (it may not be turned off there), off in dev
    unless ``enabled: true``."""
    enabled = node.boolean("enabled", tier != "dev")
    if (problem := rules.alerts_declared(enabled, tier)) is not None:
        raise node.error("enabled", f"is false: the stack {problem}", "remove the setting or set it to true")
    labels = node.mapping("prometheusLabels") or DEFAULT_PROMETHEUS_LABELS
    for key, value in labels.items():
        check_name(node, f"prometheusLabels.{key}", key, K8S_LABEL)
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
            raise node.error(f"prometheusLabels.{key}", f"{value!r} is not a Kubernetes label value",
                             "use at most 63 letters, digits, '-', '_' and '.'")
    pod_labels = node.mapping("prometheusPodLabels") or DEFAULT_PROMETHEUS_POD_LABELS
    for key, value in pod_labels.items():
        if not _LABEL_KEY.fullmatch(key):
            raise node.error(f"prometheusPodLabels.{key}", "is not a Kubernetes label key",
                             "write a label of the Prometheus pods, e.g. app.kubernetes.io/name")
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
            raise node.error(f"prometheusPodLabels.{key}", f"{value!r} is not a Kubernetes label value",
                             "use at most 63 letters, digits, '-', '_' and '.'")
    monitoring = Monitoring(
        prometheus_labels=tuple(sorted(labels.items())),
        prometheus_namespace=node.string("prometheusNamespace", DEFAULT_PROMETHEUS_NAMESPACE, rule=K8S_LABEL),
        prometheus_pod_labels=tuple(sorted(pod_labels.items())),
        lease_threshold=node.integer("leaseThreshold", DEFAULT_LEASE_THRESHOLD, minimum=1),
        request_latency_ms=node.integer("requestLatencyMs", DEFAULT_REQUEST_LATENCY_MS, minimum=1,
                                        maximum=MAX_REQUEST_LATENCY_MS, why=MAX_REQUEST_LATENCY_WHY),
    )
    node.done()
    return monitoring if enabled else None


def load_audit_rotation(node: Node, tier: Tier) -> AuditRotation:
    """``audit.rotation``: when the file device's log is rotated and how long rotated logs stay."""
    size = node.string("maxFileSize", DEFAULT_AUDIT_MAX_FILE, rule=QUANTITY)
    if not size.endswith(AUDIT_FILE_UNITS) or not size[:-2].isdigit():
        raise node.error("maxFileSize", f"{size!r} is not a whole number of Ki, Mi or Gi",
                         f"write it like {DEFAULT_AUDIT_MAX_FILE}")
    retention = node.duration("retention", DEFAULT_AUDIT_RETENTION[tier])
    if retention < DAY or retention % DAY:
        raise node.error("retention", f"{node.written('retention', retention)} is not a whole number of days",
                         "keep rotated logs 1d or more, in days")
    rotation = AuditRotation(max_file_bytes=int(quantity(size)),
                             retention_days=retention // DAY)
    node.done()
    return rotation
