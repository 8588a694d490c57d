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
from kubernetes import client as kubernetes_client

from tests.e2e.access_check import disagreements
from tests.e2e.ci import CiTarget, check_claims, check_deploy, check_preview
from tests.e2e.dev import NEEDS_KWOK, NEEDS_ROOT, AppliedDev, applied_dev, stack_secrets
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
    with applied_dev(tools, cluster, chart_repository, tmp_path_factory.mktemp("dev")) as applied:
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


def ci(dev: AppliedDev) -> CiTarget:
    assert dev.spec.github_actions is not None
    return CiTarget(dev.project, "dev", dev.vault, dev.issuer, dev.spec.github_actions, dev.audit_entries)


def test_vault_admits_a_job_token_only_with_every_claim_exact(dev: AppliedDev) -> None:
    check_claims(ci(dev))


def test_ci_deploys_with_its_oidc_token_and_vault_denies_it_nothing(dev: AppliedDev) -> None:
    check_deploy(ci(dev))


def test_a_pull_requests_preview_reads_everything_and_may_write_nothing(dev: AppliedDev) -> None:
    check_preview(ci(dev))


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
