"""Vault Agent injector annotations: what an application team puts on its pod template."""

from __future__ import annotations

from pathlib import Path

from render.annotations import injector_annotations
from tests.support import API_SERVICE, refusal, spec_of

A = "vault.hashicorp.com"
APPLICATION_TEAMS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "application-teams.md"


def test_seed_app_annotations_exactly() -> None:
    spec = spec_of("prod")
    assert injector_annotations(spec.apps[0], spec) == {
        f"{A}/agent-inject": "true",
        f"{A}/role": "api-service",
        f"{A}/auth-path": "auth/kubernetes",
        f"{A}/agent-revoke-on-shutdown": "true",
        f"{A}/tls-secret": "vault-ca",
        # The injector mounts tls-secret at /vault/tls in the agent, not where the servers mount theirs.
        f"{A}/ca-cert": "/vault/tls/ca.crt",
        f"{A}/agent-inject-secret-production-api-service.env": "secret/data/production/api-service",
        f"{A}/agent-inject-template-production-api-service.env": (
            '{{- with secret "secret/data/production/api-service" -}}\n'
            "{{- range $key, $value := .Data.data }}\n"
            "{{ $key }}={{ $value }}\n"
            "{{- end }}\n"
            "{{- end }}\n"
        ),
        f"{A}/agent-inject-secret-db-creds.env": "database/creds/api-role",
        f"{A}/agent-inject-template-db-creds.env": (
            '{{- with secret "database/creds/api-role" -}}\n'
            "PGHOST=postgres.prod.internal\nPGPORT=5432\nPGDATABASE=app\n"
            "PGUSER={{ .Data.username }}\nPGPASSWORD={{ .Data.password }}\n"
            "{{- end }}\n"
        ),
    }


def test_values_are_written_unquoted_and_the_docs_say_the_files_are_not_for_a_shell() -> None:
    # consul-template's plain {{ $value }}: a KV value "a b&c" is written as KEY=a b&c, which a shell's
    # `source` would run as two commands. Application teams are told to parse the files instead.
    spec = spec_of("prod")
    annotations = injector_annotations(spec.apps[0], spec)
    assert "\n{{ $key }}={{ $value }}\n" in annotations[f"{A}/agent-inject-template-production-api-service.env"]
    assert "\nPGPASSWORD={{ .Data.password }}\n" in annotations[f"{A}/agent-inject-template-db-creds.env"]
    assert ("Each value\nis written as Vault returns it, unquoted: read a file line by line and take everything "
            "after the\nfirst `=` as the value; do not `source` it in a shell") in APPLICATION_TEAMS_PAGE.read_text()


def test_without_tls_the_agent_needs_no_ca() -> None:
    spec = spec_of("dev")
    annotations = injector_annotations(spec.apps[0], spec)
    assert f"{A}/tls-secret" not in annotations
    assert f"{A}/ca-cert" not in annotations
    assert "PGHOST=postgres.postgres.svc\n" in annotations[f"{A}/agent-inject-template-db-creds.env"]


def test_an_app_with_only_kv_gets_no_database_file() -> None:
    spec = spec_of("prod", {f"{API_SERVICE}databaseRole": None})
    annotations = injector_annotations(spec.apps[0], spec)
    assert not any("db-creds" in key for key in annotations)
    assert annotations[f"{A}/role"] == "api-service"


class TestLifetimes:
    """vault-k8s agent-inject/agent/annotations.go (v1.7.6): ``agent-revoke-on-shutdown`` (the sidecar
    revokes its token, and with it the token's leases, when the pod stops; sidecar only) and
    ``agent-pre-populate-only`` (the init container alone: nothing left running in a Job's pod)."""

    def test_a_long_running_app_revokes_its_token_when_its_pod_stops(self) -> None:
        spec = spec_of("prod")
        annotations = injector_annotations(spec.apps[0], spec)
        assert annotations[f"{A}/agent-revoke-on-shutdown"] == "true"
        assert f"{A}/agent-pre-populate-only" not in annotations

    def test_a_job_gets_only_the_init_container(self) -> None:
        spec = spec_of("prod", {f"{API_SERVICE}job": True})
        assert spec.apps[0].job is True
        annotations = injector_annotations(spec.apps[0], spec)
        assert annotations[f"{A}/agent-pre-populate-only"] == "true"
        # Revoke-on-shutdown is the sidecar's, and a Job's pod has none.
        assert f"{A}/agent-revoke-on-shutdown" not in annotations
        assert annotations[f"{A}/agent-inject-secret-db-creds.env"] == "database/creds/api-role"

    def test_job_is_true_or_false(self) -> None:
        problem = refusal("prod", {f"{API_SERVICE}job": "yes"}, f"{API_SERVICE}job")
        assert problem.problem == "expected true or false, got a string ('yes')"
