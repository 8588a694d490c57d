"""The project as users run it: the real Pulumi CLI, its Python language host and the real providers,
against a loopback Kubernetes API (pods become Ready there without running), a real Vault with Raft
storage, a real PostgreSQL 15, and the chart fetched from a stand-in of its repository.

- every committed stack is accepted by the CLI and previewed to the end, declaring what the offline
  plan (``bin/plan``) declares;
- the dev stack is applied from empty, every identity's access in Vault is what the offline evaluator
  says (``access_check``), the stack holds still, and is destroyed only once ``removals`` say so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hvac.exceptions import VaultError  # type: ignore[import-untyped]
from kubernetes import client as kubernetes_client

from components import iac_calls
from components.environment import CiRole
from components.environment.identity import DEPLOY_POLICY, PREVIEW_POLICY
from components.environment.loader import (
    CI_ROLE_VARIABLE,
    TOKEN_FILE_VARIABLE,
)
from components.render.identity import bound_claims
from components.vault_acl import Acl, PathRule
from tests.e2e.access_check import disagreements
from tests.e2e.dev import NEEDS_KWOK, NEEDS_ROOT, AppliedDev, applied_dev, stack_secrets
from tests.e2e.issuer import OidcIssuer
from tests.e2e.project import PulumiProject, declared_names, planned_names
from tests.e2e.servers import Cluster, VaultServer, running
from tests.e2e.tools import Tools
from tests.support import COMMITTED


@pytest.fixture(scope="module")
def vault(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultServer]:
    """One Vault for the previews: a preview writes nothing, but the provider logs in (a child token)."""
    server = VaultServer(tools.which("vault"), tmp_path_factory.mktemp("vault"))
    with running(server):
        yield server


@pytest.mark.parametrize("stack", COMMITTED)
def test_the_cli_previews_every_committed_stack(stack: str, tools: Tools, cluster: Cluster,
                                                chart_repository: dict[str, str], vault: VaultServer,
                                                tmp_path: Path) -> None:
    project = PulumiProject(tools, tmp_path, {"KUBECONFIG": str(cluster.kubeconfig), **chart_repository})
    project.init(stack, {"vault:address": vault.address}, {**stack_secrets(stack), "vault:token": vault.root_token})
    preview = project.preview(stack)
    errors = [event for event in preview.get("diagnostics", []) if event.get("severity") == "error"]
    assert errors == []
    assert declared_names(preview) == planned_names(project.offline_plan(stack))
    assert {step["op"] for step in preview["steps"]} == {"create"}


@pytest.fixture(scope="module")
def dev(tools: Tools, cluster: Cluster, chart_repository: dict[str, str],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppliedDev]:
    if os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)
    if cluster.runs_pods:
        pytest.skip(NEEDS_KWOK)
    with applied_dev(tools, cluster, chart_repository, tmp_path_factory.mktemp("dev"), "127.0.0.42") as applied:
        yield applied


def test_the_dev_stack_applies_both_layers(dev: AppliedDev) -> None:
    client = dev.vault.client()
    assert {"secret/", "database/", "transit/", "pki/", "pki_int/"} <= set(
        client.sys.list_mounted_secrets_engines()["data"])
    assert {"kubernetes/", "github-actions/", "oidc/"} <= set(client.sys.list_auth_methods()["data"])
    assert set(client.sys.list_enabled_audit_devices()["data"]) == {f"{d.path}/" for d in dev.spec.audit.devices}
    assert dev.audit_entries()
    # The chart's servers, ready as far as the cluster knows (kwok's pods run nothing).
    cluster = dev.spec.deployed
    servers = kubernetes_client.AppsV1Api(dev.cluster.api()).read_namespaced_stateful_set(
        cluster.release_name, cluster.namespace)
    assert servers.status is not None
    assert servers.status.ready_replicas == cluster.replicas


def test_an_app_gets_unique_database_credentials_that_log_in(dev: AppliedDev) -> None:
    client = dev.vault.client()
    first, second = (client.secrets.database.generate_credentials("api-role")["data"] for _ in range(2))
    assert first["username"] != second["username"]
    assert first["username"].startswith("v-")
    with dev.postgres.connect(first["username"], first["password"], "app") as session:
        assert session.execute("SELECT current_user").fetchone() == (first["username"],)


def test_every_identity_reaches_in_vault_what_the_evaluator_says(dev: AppliedDev) -> None:
    assert disagreements(dev.vault.client(), dev.project.access("dev")["identities"]) == []


def test_a_second_preview_finds_no_changes(dev: AppliedDev) -> None:
    dev.project.run("preview", "--stack", "dev", "--expect-no-changes", "--non-interactive")


def job_claims(dev: AppliedDev, role: CiRole) -> dict[str, str]:
    """The claims of a GitHub job token the role admits (GitHub's token carries these and more)."""
    github = dev.spec.github_actions
    assert github is not None
    return {**bound_claims(github, role), "aud": github.audience,
            "sub": f"repo:{github.repository}:environment:{role.environment}"}


def roles(dev: AppliedDev) -> tuple[CiRole, CiRole]:
    assert dev.spec.github_actions is not None
    return dev.spec.github_actions.roles


def test_vault_admits_a_job_token_only_with_every_claim_exact(dev: AppliedDev) -> None:
    deploy, _ = roles(dev)
    assert dev.spec.github_actions is not None
    path = dev.spec.github_actions.path
    anonymous = dev.vault.client(token="")

    def login(claims: dict[str, Any], lifetime: int = 300) -> dict[str, Any]:
        answer: dict[str, Any] = anonymous.auth.jwt.jwt_login(role=deploy.name, jwt=dev.issuer.token(claims, lifetime),
                                                              path=path)
        return answer

    right = job_claims(dev, deploy)
    assert login(right)["auth"]["policies"] == ["default", *deploy.policies]
    for key, value in right.items():
        if key != "sub":
            with pytest.raises(VaultError):
                login({**right, key: f"{value}-other"})
    with pytest.raises(VaultError):
        login(right, lifetime=-120)  # expired (beyond Vault's leeway)


def iac_requests(entries: list[dict[str, Any]], policy: str) -> list[tuple[str, str]]:
    """(operation, path) of every request made with a token holding ``policy``."""
    return [(entry["request"]["operation"], entry["request"]["path"]) for entry in entries
            if entry.get("type") == "request" and policy in (entry.get("auth") or {}).get("policies", [])]


def denials(entries: list[dict[str, Any]]) -> list[str]:
    return [f"{entry['request']['operation']} {entry['request']['path']}: {entry['error']}" for entry in entries
            if entry.get("type") == "response" and "permission denied" in (entry.get("error") or "")]


def as_job(dev: AppliedDev, role: CiRole, *arguments: str) -> tuple[str, list[dict[str, Any]]]:
    """``pulumi <arguments>`` as the workflows run it (``pulumi-up.yml``, ``pr-preview.yml``): no stored
    token; the job's OIDC token exchanged by ``platformctl vault-login`` for a Vault token in a file the
    provider reads, and revoked as the last step. Returns the run's output and its audit entries."""
    before = len(dev.audit_entries())
    token_file = dev.project.root.parent / "vault-token"  # one path for every job, as $RUNNER_TEMP/vault-token
    job = {"TERRAFORM_VAULT_AUTH_JWT": dev.issuer.token(job_claims(dev, role)), CI_ROLE_VARIABLE: role.name}
    dev.project.run("config", "rm", "--stack", "dev", "vault:token")
    try:
        token_file.write_text(dev.project.platformctl("vault-login", "dev", environment=job))
        token_file.chmod(0o600)
        job[TOKEN_FILE_VARIABLE] = str(token_file)
        result = dev.project.run(*arguments, "--stack", "dev", "--non-interactive", environment=job)
        dev.project.platformctl("vault-login", "dev", "--revoke", environment=job)
    finally:
        dev.project.run("config", "set", "--stack", "dev", "--secret", "vault:token", dev.vault.root_token)
    return result.stdout, dev.audit_entries()[before:]


def test_ci_deploys_with_its_oidc_token_and_vault_denies_it_nothing(dev: AppliedDev) -> None:
    deploy, _ = roles(dev)
    _, entries = as_job(dev, deploy, "up", "--yes", "--skip-preview", "--refresh")
    calls = iac_requests(entries, DEPLOY_POLICY)
    assert calls  # the run went through the deploy role's token
    assert denials(entries) == []
    # Every call the IaC token made is in the catalogue the policy is checked against offline.
    plan = dev.project.offline_plan("dev")
    needed = iac_calls.calls([(name, resource["type"], resource["inputs"])
                              for name, resource in plan["resources"].items()])
    catalogue = Acl({"catalogue": [PathRule(call.path, call.capabilities) for call in needed]})
    assert sorted({(operation, path) for operation, path in calls
                   if not catalogue.allows(operation, path)}) == []


def test_a_pull_requests_preview_reads_everything_and_may_write_nothing(dev: AppliedDev) -> None:
    _, preview = roles(dev)
    _, entries = as_job(dev, preview, "preview", "--refresh", "--expect-no-changes")
    assert iac_requests(entries, PREVIEW_POLICY)
    assert denials(entries) == []
    assert dev.spec.github_actions is not None
    token = dev.vault.client(token="").auth.jwt.jwt_login(
        role=preview.name, jwt=dev.issuer.token(job_claims(dev, preview)),
        path=dev.spec.github_actions.path)["auth"]["client_token"]
    with pytest.raises(VaultError):
        dev.vault.client(token).sys.enable_secrets_engine("kv", path="e2e-preview-write")


def test_destroy_is_refused_until_removals_say_so(dev: AppliedDev) -> None:
    refused = dev.project.run("destroy", "--stack", "dev", "--yes", "--non-interactive", check=False)
    assert refused.returncode != 0
    assert "protected" in refused.stdout + refused.stderr
    client = dev.vault.client()
    assert "secret/" in client.sys.list_mounted_secrets_engines()["data"]

    dev.project.edit_stack("dev", {"vault-platform:removals": removals_of(dev.project.offline_plan("dev"))})
    dev.project.up("dev")
    # README, "Removing a mount...": the credentials out are revoked while their connection is declared.
    client.sys.revoke_prefix("database/creds/")
    dev.project.run("destroy", "--stack", "dev", "--yes", "--non-interactive")
    assert "secret/" not in client.sys.list_mounted_secrets_engines()["data"]
    assert "github-actions/" not in client.sys.list_auth_methods()["data"]


def _point_logins_at(project: PulumiProject, issuer: OidcIssuer) -> None:
    """GitHub's issuer and the identity provider cannot be reached here, and Vault reads their discovery
    documents as soon as the methods' config is written: both point at a loopback issuer, with its CA."""
    config = project.stack_config("dev")
    github: dict[str, Any] = {**config["vault-platform:githubActions"], "issuer": issuer.url,
                              "issuerCaPem": issuer.tls.ca_pem}
    people: dict[str, Any] = {**config["vault-platform:oidc"], "discoveryUrl": issuer.url,
                              "discoveryCaPem": issuer.tls.ca_pem}
    project.edit_stack("dev", {"vault-platform:githubActions": github, "vault-platform:oidc": people})


def removals_of(plan: dict[str, Any]) -> list[str]:
    """Every protected Vault path the plan declares, as ``removals`` names them (a PKI CA goes with its mount)."""
    prefixes = {"vault:index/audit:Audit": "sys/audit", "vault:index/mount:Mount": "sys/mounts",
                "vault:index/authBackend:AuthBackend": "sys/auth", "vault:jwt/authBackend:AuthBackend": "sys/auth"}
    paths = set()
    for resource in plan["resources"].values():
        if resource["type"] in prefixes:
            paths.add(f"{prefixes[resource['type']]}/{resource['inputs']['path']}")
        elif resource["type"] == "vault:transit/secretBackendKey:SecretBackendKey":
            paths.add(f"{resource['inputs']['backend']}/keys/{resource['inputs']['name']}")
    return sorted(paths)
