"""The alert rules, run by Prometheus's own rule engine: ``promtool check rules`` on every stack's
rule file, and ``promtool test rules`` with, for every alert, series that must fire it and series
that must leave it quiet. The exact cases use the prod test stack (namespace and release ``vault``,
a snapshot every hour, 100000 leases, 1000 ms)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from environment import EnvironmentSpec
from platformctl.adapters.stackfile import read_stack
from platformctl.core.declaration import Declaration, unwrap
from render.alerts import alerts, prometheus_rule_groups
from render.helm_values import helm_values, raft_config
from render.metrics import metrics_service, server_network_policy
from tests.support import COMMITTED, STACKS, refusal, spec_of, spec_of_config

ALERTS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "metrics-and-alerts.md"
VAULT = 'job="vault-metrics",namespace="vault"'
SERVER = {"job": "vault-metrics", "namespace": "vault"}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary is not None, "promtool is missing: bin/test installs Debian's prometheus package"
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def write_rules(spec: EnvironmentSpec, directory: Path) -> Path:
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump(prometheus_rule_groups(spec), sort_keys=False))
    return path


# ---- every stack's rules load in Prometheus


def _check(spec: EnvironmentSpec, directory: Path) -> None:
    result = promtool("check", "rules", write_rules(spec, directory).name, cwd=directory)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("stack", STACKS)
def test_promtool_accepts_each_test_stacks_rules(stack: str, tmp_path: Path) -> None:
    _check(spec_of(stack, {"vault-platform:monitoring.enabled": True}), tmp_path)


@pytest.mark.parametrize("stack", COMMITTED)
def test_promtool_accepts_each_committed_stacks_rules(stack: str, tmp_path: Path) -> None:
    spec = spec_of_config(read_stack(stack))
    if spec.monitoring is None:
        pytest.skip(f"{stack} declares no monitoring")
    _check(spec, tmp_path)


def test_promtool_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"alert": "Broken", "expr": "sum(vault_core_unsealed", "for": "1m"}]}]}))
    assert promtool("check", "rules", "rules.yaml", cwd=tmp_path).returncode != 0


def test_the_declared_prometheus_rule_is_the_rendered_one(declared: dict[str, Declaration]) -> None:
    rule = declared["prod"].named("vault-alerts-rules")
    assert rule.type == "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
    inputs = unwrap(rule.inputs)
    assert inputs["metadata"] == {"name": "vault-alerts", "namespace": "vault",
                                  "labels": {"release": "kube-prometheus-stack"}}
    assert inputs["spec"]["groups"][0]["rules"] == prometheus_rule_groups(spec_of("prod"))["groups"][0]["rules"]


def test_dev_declares_no_rules_unless_asked(declared: dict[str, Declaration]) -> None:
    assert declared["dev"].of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule") == []


# ---- each alert fires on what should fire it, and only on that


@dataclass(frozen=True)
class Case:
    """Input series and, at ``at``, the alerts expected (each by its labels without ``alertname``
    and ``severity``); an empty ``fires`` means the alert stays quiet."""

    series: dict[str, str]
    at: str
    fires: list[dict[str, str]] = field(default_factory=list)


def _server(pod: str, **labels: str) -> str:
    extra = "".join(f',{key}="{value}"' for key, value in labels.items())
    return f'{{{VAULT},pod="{pod}"{extra}}}'


ACTIVE_0 = {f"vault_core_active{_server('vault-0')}": "1x30", f"vault_core_active{_server('vault-1')}": "0x30"}
SCRAPED = {f"up{_server('vault-0')}": "1x30", f"up{_server('vault-1')}": "1x30", f"up{_server('vault-2')}": "0x30"}
"""The servers' scrapes: three pods, vault-2 down."""
SNAPSHOT = 'namespace="vault",cronjob="vault-snapshot"'
JOB = 'namespace="vault",job_name="vault-snapshot-29400000"'
AUDIT_PVC = 'namespace="vault",persistentvolumeclaim="audit-vault-0"'
DATA_PVC = 'namespace="vault",persistentvolumeclaim="data-vault-2"'
CERT_MANAGER = 'job="cert-manager",namespace="cert-manager",pod="cert-manager-6d4f9c7b5-x2kqp"'
"""Target labels of cert-manager's own pod, which a scrape without honorLabels puts on its metrics."""


def _volume(pvc: str, available: str, capacity: str = "100x90") -> dict[str, str]:
    return {f"kubelet_volume_stats_available_bytes{{{pvc}}}": available,
            f"kubelet_volume_stats_capacity_bytes{{{pvc}}}": capacity}


CASES: dict[str, list[Case]] = {
    "VaultSealed": [
        Case({f"vault_core_unsealed{_server('vault-1')}": "1 1 0x10"}, "10m", [{**SERVER, "pod": "vault-1"}]),
        Case({f"vault_core_unsealed{_server('vault-1')}": "1 1 1 1 1 1 1 1 1 0 0"}, "10m"),  # not 2m yet
        Case({f"vault_core_unsealed{_server('vault-1')}": "1x10"}, "10m"),
    ],
    "VaultMetricsDown": [
        Case({f"up{_server('vault-2')}": "1 0x10"}, "10m", [{**SERVER, "pod": "vault-2"}]),
        Case({"up{job=\"kubelet\",namespace=\"kube-system\"}": "1x10"}, "10m", [SERVER]),  # nothing scraped
        Case({f"up{_server('vault-2')}": "1x10"}, "10m"),
    ],
    "VaultNoLeader": [
        Case({f"vault_core_active{_server(pod)}": "0x10" for pod in ("vault-0", "vault-1", "vault-2")}, "5m",
             [{"namespace": "vault"}]),
        Case({**ACTIVE_0, f"vault_core_active{_server('vault-2')}": "0x10"}, "5m"),
    ],
    "VaultLeaderChanges": [
        Case({f"vault_core_active{_server('vault-0')}": "1 1 0 0 1 1 0 0 1 1 0",
              f"vault_core_active{_server('vault-1')}": "0 0 1 1 0 0 1 1 0 0 1"}, "10m", [{"namespace": "vault"}]),
        Case({f"vault_core_active{_server('vault-0')}": "1 1 1 1 1 0x5",
              f"vault_core_active{_server('vault-1')}": "0 0 0 0 0 1x5"}, "10m"),
    ],
    "VaultAutopilotUnhealthy": [
        Case({**ACTIVE_0, f"vault_autopilot_healthy{_server('vault-0')}": "0x10"}, "10m", [{"namespace": "vault"}]),
        # A former leader's gauge lingers: only the active server is believed.
        Case({**ACTIVE_0, f"vault_autopilot_healthy{_server('vault-0')}": "1x10",
              f"vault_autopilot_healthy{_server('vault-1')}": "0x10"}, "10m"),
    ],
    "VaultRaftVoterDead": [
        # vault-2's pod is scraped (down: up 0) and autopilot reports it unhealthy.
        Case({**ACTIVE_0, **SCRAPED, f"vault_autopilot_node_healthy{_server('vault-0', node_id='vault-2')}": "0x10",
              f"vault_autopilot_node_healthy{_server('vault-0', node_id='vault-1')}": "1x10"}, "10m",
             [{**SERVER, "pod": "vault-0", "node_id": "vault-2"}]),
        # vault-4 was scaled down: its pod is gone, its last value lingers in the leader's metrics.
        Case({**ACTIVE_0, **SCRAPED, f"vault_autopilot_node_healthy{_server('vault-0', node_id='vault-4')}": "0x10",
              f"vault_autopilot_node_healthy{_server('vault-0', node_id='vault-2')}": "1x10"}, "10m"),
        Case({**ACTIVE_0, f"vault_autopilot_node_healthy{_server('vault-0', node_id='vault-2')}": "1x10",
              f"vault_autopilot_node_healthy{_server('vault-1', node_id='vault-2')}": "0x10"}, "10m"),
    ],
    "VaultAuditLogFailing": [
        Case({f"vault_audit_log_request_failure{_server('vault-0')}": "0x8 1 1 1",
              f"vault_audit_log_response_failure{_server('vault-0')}": "0x10"}, "10m",
             [{"namespace": "vault", "pod": "vault-0"}]),
        Case({f"vault_audit_log_response_failure{_server('vault-1')}": "0x8 2 2 2"}, "10m",
             [{"namespace": "vault", "pod": "vault-1"}]),
        Case({f"vault_audit_log_request_failure{_server('vault-0')}": "3x10",  # failures long ago
              f"vault_audit_log_response_failure{_server('vault-0')}": "0x10"}, "10m"),
    ],
    "VaultLeaseCountHigh": [
        Case({**ACTIVE_0, f"vault_expire_num_leases{_server('vault-0')}": "150000x30"}, "20m",
             [{"namespace": "vault"}]),
        Case({**ACTIVE_0, f"vault_expire_num_leases{_server('vault-0')}": "150000x10 50000x20"}, "20m"),
        # A former leader's count lingers: only the active server is believed.
        Case({**ACTIVE_0, f"vault_expire_num_leases{_server('vault-0')}": "10x30",
              f"vault_expire_num_leases{_server('vault-1')}": "150000x30"}, "20m"),
    ],
    "VaultRequestLatencyHigh": [
        Case({f"vault_core_handle_request{_server('vault-0', quantile='0.99')}": "2000x20"}, "15m",
             [{"namespace": "vault"}]),
        Case({f"vault_core_handle_request{_server('vault-0', quantile='0.99')}": "500x20",
              f"vault_core_handle_request{_server('vault-0', quantile='0.5')}": "2000x20"}, "15m"),
    ],
    "VaultCertificateExpiring": [
        # Scraped with honorLabels: true, the metric's namespace kept.
        Case({'certmanager_certificate_expiration_timestamp_seconds{namespace="vault",name="vault-tls"}':
              f"{10 * 86400}x20"}, "15m", [{"namespace": "vault", "name": "vault-tls"}]),
        # cert-manager's chart default, honorLabels: false: the metric's namespace is exported_namespace.
        Case({f"certmanager_certificate_expiration_timestamp_seconds{{{CERT_MANAGER},exported_namespace=\"vault\","
              'name="vault-tls"}': f"{10 * 86400}x20"}, "15m", [{"namespace": "vault", "name": "vault-tls"}]),
        Case({f"certmanager_certificate_expiration_timestamp_seconds{{{CERT_MANAGER},exported_namespace=\"vault\","
              'name="vault-tls"}': f"{30 * 86400}x20"}, "15m"),
        # cert-manager running in Vault's namespace: another namespace's certificate of the same name.
        Case({'certmanager_certificate_expiration_timestamp_seconds{job="cert-manager",namespace="vault",'
              'exported_namespace="other",name="vault-tls"}': f"{86400}x20"}, "15m"),
        Case({'certmanager_certificate_expiration_timestamp_seconds{namespace="vault",name="vault-tls"}':
              f"{30 * 86400}x20",
              'certmanager_certificate_expiration_timestamp_seconds{namespace="other",name="vault-tls"}':
              f"{86400}x20"}, "15m"),
    ],
    "VaultSnapshotFailed": [
        # Failed after the last success.
        Case({f"kube_cronjob_status_last_successful_time{{{SNAPSHOT}}}": "100x10",
              f"kube_cronjob_created{{{SNAPSHOT}}}": "0x10",
              f"kube_job_status_start_time{{{JOB}}}": "300x10",
              f'kube_job_failed{{{JOB},condition="true"}}': "1x10"}, "5m", [{"namespace": "vault"}]),
        # Failed before any success.
        Case({f"kube_cronjob_created{{{SNAPSHOT}}}": "0x10", f"kube_job_status_start_time{{{JOB}}}": "300x10",
              f'kube_job_failed{{{JOB},condition="true"}}': "1x10"}, "5m", [{"namespace": "vault"}]),
        # A failure the next run made good, and another CronJob's failure.
        Case({f"kube_cronjob_status_last_successful_time{{{SNAPSHOT}}}": "400x10",
              f"kube_cronjob_created{{{SNAPSHOT}}}": "0x10",
              f"kube_job_status_start_time{{{JOB}}}": "300x10",
              f'kube_job_failed{{{JOB},condition="true"}}': "1x10",
              'kube_job_status_start_time{namespace="vault",job_name="other-1"}': "500x10",
              'kube_job_failed{namespace="vault",job_name="other-1",condition="true"}': "1x10"}, "5m"),
    ],
    "VaultSnapshotMissing": [
        # Two intervals (2h) without a success, for 15 minutes.
        Case({f"kube_cronjob_status_last_successful_time{{{SNAPSHOT}}}": "0x150",
              f"kube_cronjob_created{{{SNAPSHOT}}}": "0x150"}, "140m", [{"namespace": "vault"}]),
        # Never a success since it was created more than two intervals ago.
        Case({f"kube_cronjob_created{{{SNAPSHOT}}}": "0x150"}, "140m", [{"namespace": "vault"}]),
        # The CronJob is not there at all (or kube-state-metrics is not scraped).
        Case({"up{job=\"kubelet\"}": "1x30"}, "20m", [{"namespace": "vault", "cronjob": "vault-snapshot"}]),
        # Hourly successes.
        Case({f"kube_cronjob_status_last_successful_time{{{SNAPSHOT}}}": "0x59 3600x60 7200x30",
              f"kube_cronjob_created{{{SNAPSHOT}}}": "0x150"}, "140m"),
    ],
    "VaultAuditVolumeLow": [
        Case(_volume(AUDIT_PVC, "10x10"), "10m", [{"namespace": "vault", "persistentvolumeclaim": "audit-vault-0"}]),
        Case({**_volume(AUDIT_PVC, "50x10"),
              **_volume('namespace="vault",persistentvolumeclaim="audit-other-0"', "1x10")}, "10m"),
    ],
    "VaultAuditVolumeFillingUp": [
        Case(_volume(AUDIT_PVC, "45-0.1x90"), "60m",
             [{"namespace": "vault", "persistentvolumeclaim": "audit-vault-0"}]),
        Case(_volume(AUDIT_PVC, "40x90"), "60m"),
        Case(_volume(AUDIT_PVC, "95-0.1x90"), "60m"),  # shrinking, but more than half free
    ],
    "VaultDataVolumeLow": [
        Case(_volume(DATA_PVC, "15x10"), "10m", [{"namespace": "vault", "persistentvolumeclaim": "data-vault-2"}]),
        Case(_volume(DATA_PVC, "25x10"), "10m"),
    ],
    "VaultDataVolumeFillingUp": [
        Case(_volume(DATA_PVC, "45-0.1x90"), "60m",
             [{"namespace": "vault", "persistentvolumeclaim": "data-vault-2"}]),
        Case(_volume(DATA_PVC, "40x90"), "60m"),
    ],
}


@pytest.fixture(scope="module")
def prod_rules() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in prometheus_rule_groups(spec_of("prod"))["groups"][0]["rules"]}


def test_every_alert_has_cases_that_fire_and_that_stay_quiet(prod_rules: dict[str, dict[str, Any]]) -> None:
    assert set(CASES) == set(prod_rules)
    for name, cases in CASES.items():
        assert any(case.fires for case in cases), name
        assert any(not case.fires for case in cases), name


def _expected(rule: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    annotations = {key: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], value)
                   for key, value in rule["annotations"].items()}
    return {"exp_labels": {**labels, "severity": rule["labels"]["severity"]}, "exp_annotations": annotations}


def test_promtool_unit_tests(prod_rules: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """All cases in one promtool run (it names the alert and the evaluation time of a failure)."""
    write_rules(spec_of("prod"), tmp_path)
    tests = [{
        "interval": "1m",
        "input_series": [{"series": series, "values": values} for series, values in case.series.items()],
        "alert_rule_test": [{"eval_time": case.at, "alertname": alert,
                             "exp_alerts": [_expected(prod_rules[alert], labels) for labels in case.fires]}],
    } for alert, cases in sorted(CASES.items()) for case in cases]
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m",
                                                          "tests": tests}, sort_keys=False))
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_wrong_expectation_fails_promtool(prod_rules: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    write_rules(spec_of("prod"), tmp_path)
    quiet = CASES["VaultSealed"][-1]
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "tests": [{
        "interval": "1m",
        "input_series": [{"series": series, "values": values} for series, values in quiet.series.items()],
        "alert_rule_test": [{"eval_time": quiet.at, "alertname": "VaultSealed",
                             "exp_alerts": [_expected(prod_rules["VaultSealed"], {**SERVER, "pod": "vault-1"})]}],
    }]}))
    assert promtool("test", "rules", "tests.yaml", cwd=tmp_path).returncode != 0


# ---- per stack


def test_thresholds_and_intervals_come_from_the_spec() -> None:
    spec = spec_of("prod", {"vault-platform:monitoring.leaseThreshold": 5000,
                            "vault-platform:monitoring.requestLatencyMs": 250,
                            "vault-platform:snapshots.interval": "6h"})
    exprs = {alert.name: alert.expr for alert in alerts(spec)}
    assert exprs["VaultLeaseCountHigh"].endswith("> 5000")
    assert exprs["VaultRequestLatencyHigh"].endswith("> 250")
    assert "> 43200" in exprs["VaultSnapshotMissing"]


def test_no_certificate_alert_without_cert_manager_and_no_snapshot_alerts_without_snapshots() -> None:
    dev = spec_of("dev", {"vault-platform:monitoring": {"enabled": True}})
    names = {alert.name for alert in alerts(dev)}
    assert "VaultCertificateExpiring" not in names
    assert not {"VaultSnapshotFailed", "VaultSnapshotMissing"} & names
    assert "VaultSealed" in names


def test_every_alert_has_a_runbook_line_in_the_docs(prod_rules: dict[str, dict[str, Any]]) -> None:
    page = ALERTS_PAGE.read_text()
    missing = [name for name in prod_rules if f"| `{name}` |" not in page]
    assert missing == []


# ---- the scrape: Vault's telemetry and the chart's ServiceMonitor


def listeners(spec: EnvironmentSpec) -> dict[str, dict[str, Any]]:
    """The server config's tcp listeners by address."""
    return {listener['"tcp"']["address"].strip('"'): listener['"tcp"']
            for listener in hcl2.loads(raft_config(spec))["listener"]}


def test_the_server_config_exports_prometheus_metrics_without_hostname() -> None:
    config = hcl2.loads(raft_config(spec_of("prod")))
    (telemetry,) = config["telemetry"]
    assert (telemetry["prometheus_retention_time"], telemetry["disable_hostname"]) == ('"24h"', True)


def test_metrics_without_a_token_only_on_the_metrics_listener() -> None:
    found = listeners(spec_of("prod"))
    assert sorted(found) == ["[::]:8200", "[::]:8210"]
    assert "telemetry" not in found["[::]:8200"]  # the API: metrics only with a token
    (metrics,) = found["[::]:8210"]["telemetry"]
    assert metrics["unauthenticated_metrics_access"] is True
    for listener in found.values():  # both serve the same certificate
        assert listener["tls_cert_file"] == '"/vault/userconfig/vault-tls/tls.crt"'


def test_no_metrics_listener_without_monitoring() -> None:
    assert sorted(listeners(spec_of("dev"))) == ["[::]:8200"]
    assert sorted(listeners(spec_of("dev", {"vault-platform:monitoring.enabled": True}))) == [
        "[::]:8200", "[::]:8210"]


def test_the_metrics_service_reaches_every_server_by_the_name_the_service_monitor_scrapes() -> None:
    spec = spec_of("prod")
    assert metrics_service(spec) == {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "vault-metrics", "namespace": "vault",
                     "labels": {"app.kubernetes.io/name": "vault", "app.kubernetes.io/instance": "vault",
                                "vault-metrics": "true"}},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,  # sealed servers are never Ready
                 "ports": [{"name": "https", "port": 8210, "targetPort": 8210, "protocol": "TCP"}],
                 "selector": {"app.kubernetes.io/name": "vault", "app.kubernetes.io/instance": "vault",
                              "component": "server"}},
    }
    # The chart's ServiceMonitor selects by its name and instance labels plus matchLabels, and scrapes
    # the port named after the scheme (vault-helm 0.34.1 templates/prometheus-servicemonitor.yaml).
    monitor = helm_values(spec)["serverTelemetry"]["serviceMonitor"]
    assert monitor["matchLabels"].items() <= metrics_service(spec)["metadata"]["labels"].items()
    dev = spec_of("dev", {"vault-platform:monitoring.enabled": True})
    assert metrics_service(dev)["spec"]["ports"][0]["name"] == "http"


def test_only_prometheus_reaches_the_metrics_listener() -> None:
    servers = {"matchLabels": {"app.kubernetes.io/name": "vault", "app.kubernetes.io/instance": "vault",
                               "component": "server"}}
    assert server_network_policy(spec_of("prod")) == {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "vault-server", "namespace": "vault"},
        "spec": {"podSelector": servers, "policyTypes": ["Ingress"], "ingress": [
            {"ports": [{"port": 8200, "protocol": "TCP"}]},
            {"from": [{"podSelector": servers}], "ports": [{"port": 8201, "protocol": "TCP"}]},
            {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                       "podSelector": {"matchLabels": {"app.kubernetes.io/managed-by": "prometheus-operator",
                                                       "app.kubernetes.io/name": "prometheus"}}}],
             "ports": [{"port": 8210, "protocol": "TCP"}]},
        ]},
    }
    custom = server_network_policy(spec_of("prod", {
        "vault-platform:monitoring.prometheusNamespace": "observability",
        "vault-platform:monitoring.prometheusPodLabels": {"app": "prometheus", "prometheus": "k8s"}}))
    assert custom["spec"]["ingress"][2]["from"] == [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}},
        "podSelector": {"matchLabels": {"app": "prometheus", "prometheus": "k8s"}}}]


def test_the_metrics_service_and_policy_are_declared_with_monitoring(declared: dict[str, Declaration]) -> None:
    service = unwrap(declared["prod"].named("vault-metrics-service").inputs)
    assert (service["metadata"], service["spec"]) == (metrics_service(spec_of("prod"))["metadata"],
                                                      metrics_service(spec_of("prod"))["spec"])
    policy = unwrap(declared["prod"].named("vault-metrics-network-policy").inputs)
    assert policy["spec"] == server_network_policy(spec_of("prod"))["spec"]
    assert [r for r in declared["dev"].resources if r.name.startswith("vault-metrics")] == []


def test_the_service_monitor_scrapes_every_server_over_verified_tls() -> None:
    values = helm_values(spec_of("prod"))["serverTelemetry"]
    assert values == {
        "prometheusRules": {"enabled": False},
        "serviceMonitor": {
            "enabled": True, "selectors": {"release": "kube-prometheus-stack"}, "interval": "30s",
            "scrapeTimeout": "10s", "matchLabels": {"vault-metrics": "true"},
            "tlsConfig": {"ca": {"secret": {"name": "vault-tls", "key": "ca.crt"}}, "serverName": "vault.vault.svc"},
        },
    }


def test_without_tls_the_service_monitor_has_no_tls_config() -> None:
    monitor = helm_values(spec_of("dev", {"vault-platform:monitoring.enabled": True}))["serverTelemetry"]
    assert monitor["serviceMonitor"]["selectors"] == {"release": "prometheus"}  # the chart's own default
    assert "tlsConfig" not in monitor["serviceMonitor"]
    assert "serviceMonitor" not in helm_values(spec_of("dev"))["serverTelemetry"]


@pytest.mark.parametrize(("changes", "key", "words"), [
    ({"vault-platform:monitoring.enabled": False}, "monitoring.enabled", "prod requires them"),
    ({"vault-platform:monitoring.leaseThreshold": 0}, "monitoring.leaseThreshold", "below the minimum"),
    ({"vault-platform:monitoring.prometheusLabels": {"release": "a b"}}, "monitoring.prometheusLabels.release",
     "not a Kubernetes label value"),
    ({"vault-platform:monitoring.prometheusNamespace": "Monitoring"}, "monitoring.prometheusNamespace",
     "not a valid name"),
    ({"vault-platform:monitoring.prometheusPodLabels": {"app kubernetes": "prometheus"}},
     "monitoring.prometheusPodLabels.app kubernetes", "is not a Kubernetes label key"),
    ({"vault-platform:monitoring.prometheusPodLabels": {"app": "prom etheus"}}, "monitoring.prometheusPodLabels.app",
     "'prom etheus' is not a Kubernetes label value"),
])
def test_monitoring_refusals(changes: dict[str, Any], key: str, words: str) -> None:
    problem = refusal("prod", changes, f"vault-platform:{key}")
    assert words in str(problem)
