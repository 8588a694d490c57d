"""Values for the official ``vault`` Helm chart, and the server's Raft configuration HCL.

Every key here is one the chart's ``values.yaml`` declares; the tests validate the whole document
against the chart's ``values.schema.json`` and parse :func:`raft_config` as HCL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from environment import Cluster, EnvironmentSpec, Resources

CHART = "vault"
CHART_REPOSITORY = "https://helm.releases.hashicorp.com"
TLS_MOUNT_PATH = "/vault/userconfig/vault-tls"
AUDIT_MOUNT_PATH = "/vault/audit"
API_PORT = 8200
CLUSTER_PORT = 8201
METRICS_PORT = 8210
"""Vault's metrics listener (with monitoring on): ``/v1/sys/metrics`` without a token, on a port of its
own so that a NetworkPolicy lets Prometheus alone reach it (:mod:`render.metrics`)."""
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
PROMETHEUS_RETENTION = "24h"
"""Longer than any alert's look-back (a counter that vanished between two scrapes would reset)."""
# The chart's own server image (values.yaml of 0.34.1, server.image); the one pin for every container
# of ours that runs Vault's image (the snapshot job's too). Bump it with the chart.
SERVER_IMAGE = "hashicorp/vault:2.0.4"
# The SIGHUP sidecar runs it: already on every node that runs Vault, and Alpine with busybox (sh,
# sha256sum, pgrep, kill; the chart's preStop hook relies on the same tools: `kill -SIGTERM $(pidof vault)`).
TLS_RELOADER_IMAGE = SERVER_IMAGE
TLS_RELOAD_INTERVAL_SECONDS = 30
METRICS_SERVICE_LABEL = "vault-metrics"
"""The label of the metrics service, which the chart's ServiceMonitor selects (with the chart's own)."""
SIGHUP_SIDECAR = "vault-sighup"
"""The container beside each server that signals it (certificate renewed, audit log rotated)."""


def api_scheme(cluster: Cluster) -> str:
    return "https" if cluster.tls.enabled else "http"


def server_labels(release: str) -> dict[str, str]:
    """The labels of the release's server pods: the chart's StatefulSet ``matchLabels``
    (templates/server-statefulset.yaml; the chart's name is ``vault``)."""
    return {"app.kubernetes.io/name": CHART, "app.kubernetes.io/instance": release, "component": "server"}


def raft_peer_address(cluster: Cluster, index: int) -> str:
    """API address of server ``index`` on the chart's headless service ``<release>-internal``."""
    return f"{api_scheme(cluster)}://{raft_peer_host(cluster, index)}:{API_PORT}"


def raft_peer_host(cluster: Cluster, index: int) -> str:
    return f"{cluster.release_name}-{index}.{cluster.release_name}-internal"


def service_address(cluster: Cluster) -> str:
    """Vault's in-cluster API address (the chart's active-or-standby service)."""
    return f"{api_scheme(cluster)}://{cluster.release_name}.{cluster.namespace}.svc:{API_PORT}"


def raft_config(spec: EnvironmentSpec) -> str:
    """The server configuration: listeners, Raft storage joining every peer, Kubernetes service
    registration and, when the spec asks for it, the AWS KMS seal."""
    cluster = spec.deployed
    if cluster.tls.enabled:
        tls = [
            f"tls_cert_file = {_q(TLS_MOUNT_PATH + '/tls.crt')}",
            f"tls_key_file = {_q(TLS_MOUNT_PATH + '/tls.key')}",
            'tls_min_version = "tls12"',
        ]
    else:
        tls = ["tls_disable = 1"]
    lines = [
        "ui = true",
        "disable_mlock = true",
        f"cluster_name = {_q(f'vault-{spec.stack}')}",
        "",
        'listener "tcp" {',
        f'  address = "[::]:{API_PORT}"',
        f'  cluster_address = "[::]:{CLUSTER_PORT}"',
        *(f"  {line}" for line in tls),
        "}",
        "",
    ]
    if spec.monitoring is not None:
        lines += [
            # Prometheus scrapes /v1/sys/metrics here without a token: each listener has its own handler,
            # and only this one serves the node's own metrics unauthenticated and unforwarded, on
            # standbys and sealed servers too (hashicorp/vault http/handler.go), which is what tells a
            # sealed server apart. A token would not do: with one, a standby refuses the request (it
            # would have to forward it, and metrics are local-only: http/logical.go) and a sealed server
            # checks no token; the chart's values.yaml calls scraping every pod "Enterprise only". Vault
            # gives this listener a cluster port of its own too (the next one up; command/server.go), unused.
            'listener "tcp" {',
            f'  address = "[::]:{METRICS_PORT}"',
            *(f"  {line}" for line in tls),
            "  telemetry {",
            "    unauthenticated_metrics_access = true",
            "  }",
            "}",
            "",
        ]
    lines += [
        "telemetry {",
        # Prometheus format on: gauges and counters are kept this long after their last update.
        f"  prometheus_retention_time = {_q(PROMETHEUS_RETENTION)}",
        # Metric names without the pod's hostname: the same names on every server.
        "  disable_hostname = true",
        "}",
        "",
        'storage "raft" {',
        '  path = "/vault/data"',
    ]
    for index in range(cluster.replicas):
        lines += ["", "  retry_join {", f"    leader_api_addr = {_q(raft_peer_address(cluster, index))}"]
        if cluster.tls.enabled:
            lines += [
                f"    leader_ca_cert_file = {_q(TLS_MOUNT_PATH + '/ca.crt')}",
                f"    leader_tls_servername = {_q(raft_peer_host(cluster, index))}",
            ]
        lines.append("  }")
    lines += ["}", "", 'service_registration "kubernetes" {}']
    if cluster.auto_unseal is not None:
        lines += [
            "",
            'seal "awskms" {',
            f"  region = {_q(cluster.auto_unseal.region)}",
            f"  kms_key_id = {_q(cluster.auto_unseal.kms_key_id)}",
            "}",
        ]
    return "\n".join(lines) + "\n"


def tls_reload_script(directory: str, process: str = "vault",
                      interval_seconds: float = TLS_RELOAD_INTERVAL_SECONDS) -> str:
    """The :func:`sighup_script` of a server without audit log rotation."""
    return sighup_script(directory, None, process, interval_seconds)


def sighup_script(tls_directory: str | None, audit: AuditLogRotation | None, process: str = "vault",
                  interval_seconds: float = TLS_RELOAD_INTERVAL_SECONDS) -> str:
    """A POSIX shell loop that sends ``process`` one SIGHUP each round in which the listener's
    certificate or key in ``tls_directory`` changed under it, or it rotated an audit log.

    Vault reads ``tls_cert_file`` and ``tls_key_file`` at start and again only on SIGHUP
    (hashicorp/vault issues 5387 and 10442); cert-manager renews the secret and the kubelet swaps
    the mounted files in place (one atomic ``..data`` symlink switch, so both files change
    together), but without the signal every server keeps presenting the old certificate until it
    expires. The file audit device appends to its file forever; on SIGHUP it closes and reopens it
    (Vault's file audit device documentation, "log rotation"). So a log past ``max_bytes``, or
    written to on an earlier UTC day, is renamed ``<log>.<UTC time>`` (Vault keeps writing the
    renamed file until the signal: nothing is lost) and the same signal makes Vault start a new one;
    a round later the renamed file is gzipped, and rotated logs older than ``retention_days`` are
    deleted.

    A process the loop sees for the first time (Vault started or restarted) is never signalled in
    that round: a SIGHUP that reaches Vault before it handles the signal would end it. It is taken
    to hold the files as they were one round earlier, before it started, so a renewal that lands
    around a restart costs at most one extra reload a round later, never a missed one.
    """
    lines = []
    if tls_directory is not None:
        lines += [f'files="{tls_directory}/tls.crt {tls_directory}/tls.key"', 'before="$(sha256sum $files)"',
                  'loaded=""']
    lines.append('seen=""')
    if audit is not None:
        lines += [f'logs="{" ".join(audit.files)}"', 'day="$(date -u +%Y%m%d)"']
    lines.append(f"while sleep {interval_seconds:g}; do")
    if tls_directory is not None:
        lines.append('  current="$(sha256sum $files)" || continue')
    if audit is not None:
        lines += [
            "  for log in $logs; do",
            '    for old in "$log".*Z; do [ -f "$old" ] && gzip "$old"; done',
            f'    find "${{log%/*}}" -maxdepth 1 -name "${{log##*/}}.*.gz" -mmin +{audit.retention_days * 1440} '
            "-delete",
            "  done",
        ]
    lines += [
        # The oldest process of that name: the server, not a child it forks (briefly of the same name).
        f'  pid="$(pgrep -o -x {process})" || pid=""',
        '  if [ "$pid" != "$seen" ]; then',
        '    seen="$pid"',
    ]
    if tls_directory is not None:
        lines.append('    loaded="$before"')
    if audit is None:
        lines += [
            '  elif [ -n "$pid" ] && [ "$current" != "$loaded" ]; then',
            f'    kill -HUP $pid && loaded="$current" && echo "certificate changed: sent SIGHUP to {process} '
            '(pid $pid)"',
        ]
    else:
        lines += ['  elif [ -n "$pid" ]; then', '    reason=""']
        if tls_directory is not None:
            lines.append('    [ "$current" != "$loaded" ] && reason="certificate changed"')
        lines += [
            '    today="$(date -u +%Y%m%d)"',
            '    daily=""',
            '    if [ "$today" != "$day" ]; then daily=1; day="$today"; fi',
            "    for log in $logs; do",
            '      size="$(stat -c %s "$log" 2>/dev/null)" || size=0',
            f'      if [ "$size" -gt {audit.max_bytes} ] || {{ [ -n "$daily" ] && [ "$size" -gt 0 ]; }}; then',
            '        mv "$log" "$log.$(date -u +%Y%m%dT%H%M%SZ)" && reason="${reason:+$reason, }rotated $log"',
            "      fi",
            "    done",
            '    if [ -n "$reason" ]; then',
            "      kill -HUP $pid && " + ('loaded="$current" && ' if tls_directory is not None else "")
            + f'echo "$reason: sent SIGHUP to {process} (pid $pid)"',
            "    fi",
        ]
    lines += ["  fi"]
    if tls_directory is not None:
        lines.append('  before="$current"')
    lines.append("done")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class AuditLogRotation:
    """What the sidecar rotates: the file audit devices' logs on the audit volume."""

    files: tuple[str, ...]
    """Absolute paths of the logs."""
    max_bytes: int
    """A log past this size is rotated (also once a day)."""
    retention_days: int
    """Rotated, gzipped logs are deleted after this many days."""


def audit_log_rotation(spec: EnvironmentSpec) -> AuditLogRotation | None:
    rotation = spec.audit.rotation
    files = tuple(device.file_path for device in spec.audit.devices
                  if device.file_path is not None and device.file_path.startswith(f"{AUDIT_MOUNT_PATH}/"))
    if rotation is None or not files:
        return None
    return AuditLogRotation(files=files, max_bytes=rotation.max_file_bytes, retention_days=rotation.retention_days)


def sighup_sidecar(spec: EnvironmentSpec) -> dict[str, Any] | None:
    """The sidecar that signals Vault: a renewed certificate takes effect with no restart, and the
    audit logs rotate; ``None`` when there is neither. The chart's ``server.extraContainers``, with
    ``server.shareProcessNamespace`` so that it can signal Vault (vault-helm 0.34.1 values.yaml
    documents that pair for exactly this: "if Vault must be signaled, e.g. to send a SIGHUP for a log
    rotation"). It runs as the pod's user (the chart's default, uid 100, the same as Vault's), which
    may signal Vault without any capability. Sharing the process namespace puts it inside Vault's
    trust boundary (a process of the same user can see Vault's through ``/proc``), so it is the
    chart's own image running nothing but this loop, with no capabilities and a read-only root."""
    cluster = spec.deployed
    audit = audit_log_rotation(spec)
    tls_directory = TLS_MOUNT_PATH if cluster.tls.enabled else None
    if tls_directory is None and audit is None:
        return None
    mounts = []
    if tls_directory is not None:
        mounts.append({"name": "vault-tls", "mountPath": TLS_MOUNT_PATH, "readOnly": True})
    if audit is not None:
        mounts.append({"name": "audit", "mountPath": AUDIT_MOUNT_PATH})  # the chart's audit volume claim
    return {
        "name": SIGHUP_SIDECAR,
        "image": TLS_RELOADER_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", sighup_script(tls_directory, audit)],
        "volumeMounts": mounts,
        # gzip of a rotated log is the most it does: a 100Mi log takes about a minute at this limit.
        "resources": {"requests": {"cpu": "5m", "memory": "8Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
    }


def helm_values(spec: EnvironmentSpec) -> dict[str, Any]:
    """The chart values for ``spec``: HA Raft, TLS, injector, budgets, storage and resources."""
    cluster = spec.deployed
    server: dict[str, Any] = {
        # The config's hash on the pod template: a config change moves the StatefulSet's update
        # revision. The chart's OnDelete strategy restarts no pod for it: `platformctl rollout` does.
        "includeConfigAnnotation": True,
        "resources": _resources(cluster.server_resources),
        "affinity": _anti_affinity(cluster.release_name, "server", CHART),
        "ha": {
            "enabled": True,
            "replicas": cluster.replicas,
            "raft": {"enabled": True, "setNodeId": True, "config": raft_config(spec)},
            # Keep a Raft majority through voluntary disruptions (node drains, upgrades).
            "disruptionBudget": {"enabled": True, "maxUnavailable": max(1, (cluster.replicas - 1) // 2)},
        },
        "dataStorage": _storage(cluster, cluster.data_storage, "/vault/data"),
        "auditStorage": _storage(cluster, cluster.audit_storage, AUDIT_MOUNT_PATH),
        "standalone": {"enabled": False},
        "dev": {"enabled": False},
    }
    if cluster.tls.enabled:
        server["extraEnvironmentVars"] = {"VAULT_CACERT": f"{TLS_MOUNT_PATH}/ca.crt"}
        server["volumes"] = [{"name": "vault-tls", "secret": {"secretName": cluster.tls.secret_name}}]
        server["volumeMounts"] = [{"name": "vault-tls", "mountPath": TLS_MOUNT_PATH, "readOnly": True}]
    if (sidecar := sighup_sidecar(spec)) is not None:
        server["shareProcessNamespace"] = True
        server["extraContainers"] = [sidecar]
    telemetry: dict[str, Any] = {"prometheusRules": {"enabled": False}}  # ours: components.monitoring
    if spec.monitoring is not None:
        telemetry["serviceMonitor"] = service_monitor(spec)
    if cluster.auto_unseal is not None:
        server["serviceAccount"] = {"annotations": {IRSA_ANNOTATION: cluster.auto_unseal.role_arn}}
    injector: dict[str, Any] = {
        "enabled": True,
        "replicas": cluster.injector_replicas,
        "resources": _resources(cluster.injector_resources),
        "authPath": f"auth/{spec.kubernetes_auth_path}",
        "affinity": _anti_affinity(cluster.release_name, "webhook", f"{CHART}-agent-injector"),
    }
    if cluster.injector_replicas > 1:
        injector["podDisruptionBudget"] = {"maxUnavailable": 1}
        injector["leaderElector"] = {"enabled": True}
    return {
        "global": {"enabled": True, "tlsDisable": not cluster.tls.enabled},
        "injector": injector,
        "server": server,
        "ui": {"enabled": True},
        "csi": {"enabled": False},
        "serverTelemetry": telemetry,
    }


def service_monitor(spec: EnvironmentSpec) -> dict[str, Any]:
    """The chart's ServiceMonitor (``serverTelemetry.serviceMonitor``): every server through the
    headless ``<release>-metrics`` service, whose port of the chart's scheme name is the metrics
    listener (:func:`render.metrics.metrics_service`; the chart's default selects the
    active server's API port only, which cannot report a sealed one), with the Prometheus operator's
    labels, and over TLS verified against the Vault CA by the name the certificate covers (a pod IP
    is not)."""
    assert spec.monitoring is not None
    cluster = spec.deployed
    monitor: dict[str, Any] = {
        "enabled": True,
        "selectors": dict(spec.monitoring.prometheus_labels),
        "interval": "30s",
        "scrapeTimeout": "10s",
        "matchLabels": {METRICS_SERVICE_LABEL: "true"},
    }
    if cluster.tls.enabled:
        monitor["tlsConfig"] = {
            "ca": {"secret": {"name": cluster.tls.secret_name, "key": "ca.crt"}},
            "serverName": f"{cluster.release_name}.{cluster.namespace}.svc",
        }
    return monitor


def _storage(cluster: Cluster, size: str, mount_path: str) -> dict[str, Any]:
    storage: dict[str, Any] = {"enabled": True, "size": size, "mountPath": mount_path,
                               "accessMode": "ReadWriteOnce"}
    if cluster.storage_class is not None:
        storage["storageClass"] = cluster.storage_class
    return storage


def _resources(resources: Resources) -> dict[str, dict[str, str]]:
    return {
        "requests": {"cpu": resources.cpu_request, "memory": resources.memory_request},
        "limits": {"cpu": resources.cpu_limit, "memory": resources.memory_limit},
    }


def _anti_affinity(release: str, component: str, app_name: str) -> dict[str, Any]:
    """No two pods of one component on the same node: a node loss costs one replica at most."""
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": {
                    "app.kubernetes.io/name": app_name,
                    "app.kubernetes.io/instance": release,
                    "component": component,
                }},
                "topologyKey": "kubernetes.io/hostname",
            }],
        },
    }


def _q(value: str) -> str:
    """An HCL string literal (HCL strings share JSON's escapes)."""
    return json.dumps(value)
