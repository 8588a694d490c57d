"""The project as users run it: the real Pulumi CLI, its Python language host and the real providers,
against a loopback Kubernetes API (pods become Ready there without running), a real Vault with Raft
storage, a real PostgreSQL 15, and the chart fetched from a stand-in of its repository.

- every committed stack is accepted by the CLI and previewed to the end, declaring what the offline
  plan (``bin/plan``) declares;
- the dev stack is applied from empty, every identity's access in Vault is what the offline evaluator
  says (``access_check``), the stack holds still, and is destroyed only once ``removals`` say so.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hvac.exceptions import VaultError  # type: ignore[import-untyped]
from kubernetes import client as kubernetes_client

from components import iac_calls
from components.environment import CiRole, EnvironmentSpec
from components.environment.identity import DEPLOY_POLICY, PREVIEW_POLICY
from components.environment.loader import (
    CI_ROLE_VARIABLE,
    DEV_POSTGRES_NAMESPACE,
    DEV_POSTGRES_PORT,
    TOKEN_FILE_VARIABLE,
)
from components.render.admin_setup import IN_CLUSTER_SUPERUSER
from components.render.identity import bound_claims
from components.vault_acl import Acl, PathRule
from platformctl.stackfile import read_stack, stack_spec
from tests.e2e.access_check import disagreements
from tests.e2e.issuer import OidcIssuer
from tests.e2e.project import PulumiProject, declared_names, planned_names
from tests.e2e.servers import KubeCluster, VaultServer, ca_bundle, running
from tests.e2e.tools import Tools
from tests.postgres.server import PostgresServer
from tests.support import COMMITTED

PLACEHOLDER = "placeholder-set-by-the-e2e-test"
SERVICE_ACCOUNT_DIRECTORY = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""Where a pod's service account token and the cluster's CA are (and where Vault's Kubernetes auth reads them)."""


@pytest.fixture(scope="module")
def vault(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultServer]:
    """One Vault for the previews: a preview writes nothing, but the provider logs in (a child token)."""
    server = VaultServer(tools.which("vault"), tmp_path_factory.mktemp("vault"))
    with running(server):
        yield server


def stack_secrets(stack: str) -> dict[str, str]:
    """A placeholder for every stack secret the stack file references (what `bin/plan` lists)."""
    return {key: PLACEHOLDER for key in read_stack(stack).placeholders}


@pytest.mark.parametrize("stack", COMMITTED)
def test_the_cli_previews_every_committed_stack(stack: str, tools: Tools, cluster: KubeCluster,
                                                chart_repository: dict[str, str], vault: VaultServer,
                                                tmp_path: Path) -> None:
    project = PulumiProject(tools, tmp_path, {"KUBECONFIG": str(cluster.kubeconfig), **chart_repository})
    project.init(stack, {"vault:address": vault.address}, {**stack_secrets(stack), "vault:token": vault.root_token})
    preview = project.preview(stack)
    errors = [event for event in preview.get("diagnostics", []) if event.get("severity") == "error"]
    assert errors == []
    assert declared_names(preview) == planned_names(project.offline_plan(stack))
    assert {step["op"] for step in preview["steps"]} == {"create"}


class DevPostgresInit:
    """What the in-cluster PostgreSQL's container does on its first start, for a real PostgreSQL beside the
    cluster (pods do not run here): once the program's Secret exists, its init script runs as the image's
    superuser in the database the Deployment names (the postgres image's docker-entrypoint-initdb.d)."""

    def __init__(self, cluster: KubeCluster, postgres: PostgresServer, connection_name: str, database: str) -> None:
        self.core = kubernetes_client.CoreV1Api(cluster.api())
        self.postgres = postgres
        self.secret = f"{connection_name}-credentials"
        self.database = database
        self.done = threading.Event()
        self.stopping = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        with self.postgres.superuser() as connection:
            connection.execute(f'CREATE ROLE "{IN_CLUSTER_SUPERUSER}" SUPERUSER')
            connection.execute(f'CREATE DATABASE "{self.database}" OWNER "{IN_CLUSTER_SUPERUSER}"')
        self.thread.start()

    def _watch(self) -> None:
        try:
            while not self.stopping.wait(0.1):
                with contextlib.suppress(kubernetes_client.ApiException):
                    secret = self.core.read_namespaced_secret(self.secret, DEV_POSTGRES_NAMESPACE)
                    script = base64.b64decode((secret.data or {})["10-vault-admin.sql"]).decode()
                    with self.postgres.superuser(self.database) as connection:
                        connection.execute(f'SET ROLE "{IN_CLUSTER_SUPERUSER}"')
                        connection.execute(script.encode())
                    self.done.set()
                    return
        except BaseException as error:  # reported by the test
            self.failure = error

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)


def audit_directory(spec: EnvironmentSpec) -> Path:
    """Where the dev stack's file audit device writes inside the Vault pod (the chart's audit volume)."""
    (path,) = [device.file_path for device in spec.audit.devices if (device.file_path or "").startswith("/")]
    assert path is not None
    return Path(path)


@dataclass
class AppliedDev:
    """The dev stack as ``pulumi up`` left it, and the servers it runs against."""

    project: PulumiProject
    cluster: KubeCluster
    vault: VaultServer
    postgres: PostgresServer
    issuer: OidcIssuer
    spec: EnvironmentSpec
    audit_log: Path
    """Vault's file audit log (the dev stack's ``file`` device), as this machine sees it."""

    def audit_entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def dev(tools: Tools, cluster: KubeCluster, chart_repository: dict[str, str],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppliedDev]:
    """The dev stack applied from empty by ``pulumi up`` (the bootstrap run: the stack's token)."""
    if os.geteuid() != 0:
        pytest.skip("the dev stack's up needs root: Vault runs in a mount namespace of its own, with the "
                    "in-cluster names and the audit volume of its pod (CI runs as root)")
    directory = tmp_path_factory.mktemp("dev")
    spec = stack_spec(read_stack("dev"))
    assert spec.database is not None
    (connection,) = [c for c in spec.database.connections if c.in_cluster]
    audit_log = audit_directory(spec)
    (directory / "audit").mkdir()
    # What Vault's pod has: its audit volume, and its service account's CA (the Kubernetes auth method reads
    # it when its config is written: vault-plugin-auth-kubernetes, path_config.go, updateTLSConfig).
    service_account = directory / "serviceaccount"
    service_account.mkdir()
    shutil.copy(cluster.directory / "pki" / "ca.crt", service_account / "ca.crt")
    pod_paths = {directory / "audit": audit_log.parent, service_account: SERVICE_ACCOUNT_DIRECTORY}
    # The in-cluster Service's name, for Vault, at a loopback address of its own on PostgreSQL's port.
    postgres = PostgresServer(address="127.0.0.42", port=DEV_POSTGRES_PORT)
    issuer = OidcIssuer(directory / "issuer")
    vault = VaultServer(tools.which("vault"), directory / "vault", hosts={connection.host: postgres.address},
                        mounts=pod_paths)
    init = DevPostgresInit(cluster, postgres, connection.name, connection.database)
    with mount_points(pod_paths.values()), running(postgres, issuer, vault, init):
        bundle = ca_bundle(directory, issuer.tls.ca_pem, Path(chart_repository["SSL_CERT_FILE"]).read_text())
        project = PulumiProject(tools, directory / "cli", {
            "KUBECONFIG": str(cluster.kubeconfig), **chart_repository, "SSL_CERT_FILE": str(bundle)})
        _point_logins_at(project, issuer)
        project.init("dev", {"vault:address": vault.address},
                     {**stack_secrets("dev"), "vault:token": vault.root_token})
        project.up("dev")
        assert init.failure is None
        assert init.done.is_set()
        yield AppliedDev(project, cluster, vault, postgres, issuer, spec, directory / "audit" / audit_log.name)


@contextlib.contextmanager
def mount_points(paths: Iterable[Path]) -> Iterator[None]:
    """Empty directories to mount on in Vault's namespace; those that did not exist are removed after."""
    created: list[Path] = []
    for path in paths:
        missing = [directory for directory in (path, *path.parents) if not directory.exists()]
        path.mkdir(parents=True, exist_ok=True)
        created.extend(missing)
    try:
        yield
    finally:
        for directory in created:  # deepest first
            with contextlib.suppress(OSError):
                directory.rmdir()


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
