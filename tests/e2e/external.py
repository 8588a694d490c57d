"""A prod-shaped stack whose Vault is external (``tests/e2e/stacks/Pulumi.e2e-prod.yaml``), applied by the
real CLI to a real Vault (Raft), with its Kubernetes auth reviewing tokens of a real Kubernetes API from
outside it, and its database engine on PostgreSQL 15 over TLS (``verify-full``), set up with the
project's own ``platformctl db-setup`` as a DBA would: :func:`applied_external`, for the test modules
that need it."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import hvac  # type: ignore[import-untyped]
from kubernetes import client as kubernetes_client

from tests.e2e.issuer import OidcIssuer
from tests.e2e.project import PulumiProject
from tests.e2e.servers import (
    Cluster,
    VaultServer,
    api_server,
    audit_log_entries,
    ca_bundle,
    loopback_address_free_on,
    running,
)
from tests.e2e.tools import Tools
from tests.postgres.server import PostgresServer, ServerTls

STACK = "e2e-prod"
HERE = Path(__file__).resolve().parent
DATABASE_HOST = "postgres.e2e.internal"
APP = "checkout"
APP_NAMESPACE = "production"
REVIEWER = ("kube-system", "vault-token-reviewer")
SECRETS = {"checkoutApiKey": "checkout-key-1", "billingApiKey": "billing-key-1", "oidcClientSecret": "e2e-client",
           "postgresAdminPassword": "e2e-admin-password-1"}


@dataclass
class AppliedExternal:
    """The e2e-prod stack as ``pulumi up`` left it, and the servers it configures."""

    project: PulumiProject
    cluster: Cluster
    vault: VaultServer
    postgres: PostgresServer
    tls: ServerTls
    """The database server's throwaway CA and certificate."""
    issuer: OidcIssuer
    """The OIDC issuer of CI's and people's logins (GitHub's and the identity provider's stand-in)."""
    audit_log: Path
    """Vault's file audit log."""
    jobs_namespace: str
    """Where the stack's snapshot job runs in the cluster."""

    def audit_entries(self) -> list[dict[str, Any]]:
        return audit_log_entries(self.audit_log)

    def app_token(self) -> str:
        """The application's Vault token, logged in as its pod would: its service account's token."""
        jwt = service_account_token(self.cluster, APP_NAMESPACE, APP, audience="vault")
        answer = self.vault.client(token="").auth.kubernetes.login(role=APP, jwt=jwt)
        token: str = answer["auth"]["client_token"]
        return token

    def app(self) -> hvac.Client:
        return self.vault.client(self.app_token())


def service_account_token(cluster: Cluster, namespace: str, name: str, audience: str | None = None) -> str:
    """A token of the service account (TokenRequest), as the kubelet mounts it in a pod."""
    spec: dict[str, Any] = {"expirationSeconds": 3600}
    if audience is not None:
        spec["audiences"] = [audience]
    answer = kubernetes_client.CoreV1Api(cluster.api()).create_namespaced_service_account_token(
        name, namespace, cast(Any, {"spec": spec}))
    assert answer.status is not None
    return str(answer.status.token)


def prepare_cluster(cluster: Cluster, jobs_namespace: str) -> str:
    """The application's and the jobs' namespaces and service accounts, and the token reviewer: a service
    account bound to ``system:auth-delegator`` (README, "A Vault this stack does not deploy"). Returns its JWT."""
    core = kubernetes_client.CoreV1Api(cluster.api())
    rbac = kubernetes_client.RbacAuthorizationV1Api(cluster.api())
    for create in (lambda: core.create_namespace(cast(Any, {"metadata": {"name": APP_NAMESPACE}})),
                   lambda: core.create_namespace(cast(Any, {"metadata": {"name": jobs_namespace}})),
                   lambda: core.create_namespaced_service_account(APP_NAMESPACE, cast(Any, {"metadata": {
                       "name": APP}})),
                   lambda: core.create_namespaced_service_account(REVIEWER[0], cast(Any, {"metadata": {
                       "name": REVIEWER[1]}})),
                   lambda: rbac.create_cluster_role_binding(cast(Any, {
                       "metadata": {"name": "vault-token-reviewer"},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                   "name": "system:auth-delegator"},
                       "subjects": [{"kind": "ServiceAccount", "namespace": REVIEWER[0], "name": REVIEWER[1]}]}))):
        try:
            create()
        except kubernetes_client.ApiException as error:
            if error.status != 409:  # already there: another module of the session made it
                raise
    return service_account_token(cluster, *REVIEWER)


def set_up_database(project: PulumiProject, postgres: PostgresServer, stack: str) -> None:
    """What the DBA does once (README, "Creating it"): the tables' owner and a table, then the SQL of
    ``platformctl db-setup``, then the admin's password."""
    with postgres.superuser() as session:
        session.execute('CREATE ROLE "app_owner" NOLOGIN')
        session.execute('CREATE DATABASE "app" OWNER "app_owner"')
    with postgres.superuser("app") as session:
        session.execute('SET ROLE "app_owner"')
        session.execute("CREATE TABLE public.orders (id serial PRIMARY KEY, item text)")
        session.execute("RESET ROLE")
        session.execute(project.platformctl("db-setup", stack).encode())
        session.execute(f"ALTER ROLE vault_admin PASSWORD '{SECRETS['postgresAdminPassword']}'")


NEEDS_ROOT = ("the external Vault's tests need root: Vault runs in a mount namespace of its own, where the "
              "database's name points at the test's PostgreSQL (CI runs as root)")


@contextlib.contextmanager
def applied_external(tools: Tools, cluster: Cluster, directory: Path, stack: str = STACK) -> Iterator[AppliedExternal]:
    """The e2e-prod stack applied from empty by ``pulumi up`` (the stack's token), its servers stopped after.
    The cluster gets the application's and the jobs' namespaces once (a second call reuses them).
    PostgreSQL listens on 5432 (the stack's connection names no port) at a loopback address of its own."""
    database_address = loopback_address_free_on(5432)
    tls = ServerTls.throwaway(DATABASE_HOST, "vault-platform e2e database CA")
    # The database's name, for Vault, at that address (in a private /etc/hosts: root).
    postgres = PostgresServer(tls=tls, address=database_address, port=5432)
    issuer = OidcIssuer(directory / "issuer")
    hosts = {DATABASE_HOST: postgres.address}
    vault = VaultServer(tools.which("vault"), directory / "vault", hosts=hosts)
    # The snapshot job's objects, in a namespace of this stack's own: other modules' stacks share the cluster.
    jobs_namespace = f"vault-jobs-{database_address.replace('.', '-')}"
    reviewer_jwt = prepare_cluster(cluster, jobs_namespace)
    with running(postgres, issuer, vault):
        bundle = ca_bundle(directory, issuer.tls.ca_pem)
        project = PulumiProject(tools, directory / "cli", {"SSL_CERT_FILE": str(bundle),
                                                            "KUBECONFIG": str(cluster.kubeconfig)})
        for stack_file in (HERE / "stacks").glob("Pulumi.*.yaml"):  # the app files name each
            shutil.copy(stack_file, project.root / "stacks")
        shutil.copytree(HERE / "apps", project.root / "apps", dirs_exist_ok=True)
        config = project.stack_config(stack)
        server, cluster_ca = api_server(cluster.kubeconfig)
        config["vault-platform:externalVault"].update(kubernetesHost=server, kubernetesCaCert=cluster_ca,
                                                      jobsNamespace=jobs_namespace)
        config["vault-platform:githubActions"].update(issuer=issuer.url, issuerCaPem=issuer.tls.ca_pem)
        config["vault-platform:oidc"].update(discoveryUrl=issuer.url, discoveryCaPem=issuer.tls.ca_pem)
        config["vault-platform:database"]["connections"][0]["tlsCa"] = tls.ca_pem
        config["vault-platform:audit"]["devices"][0]["filePath"] = str(directory / "vault-audit.log")
        project.edit_stack(stack, config)
        project.init(stack, {"vault:address": vault.address}, {
            **{f"vault-platform:{key}": value for key, value in SECRETS.items()},
            "vault-platform:tokenReviewerJwt": reviewer_jwt, "vault:token": vault.root_token})
        set_up_database(project, postgres, stack)
        project.up(stack)
        yield AppliedExternal(project, cluster, vault, postgres, tls, issuer, directory / "vault-audit.log",
                              jobs_namespace)
