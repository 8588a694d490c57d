"""A prod-shaped stack whose Vault is external (``tests/e2e/stacks/Pulumi.e2e-prod.yaml``), applied by the
real CLI to a real Vault (Raft), with its Kubernetes auth reviewing tokens of a real Kubernetes API from
outside it, and its database engine on PostgreSQL 15 over TLS (``verify-full``), set up with the
project's own ``platformctl db-setup`` as a DBA would. Then what an application gets, for real."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import hvac  # type: ignore[import-untyped]
import psycopg
import pytest
import yaml
from hvac.exceptions import VaultError  # type: ignore[import-untyped]
from kubernetes import client as kubernetes_client

from tests.e2e.access_check import disagreements
from tests.e2e.issuer import OidcIssuer
from tests.e2e.project import PulumiProject
from tests.e2e.servers import KubeCluster, VaultServer, ca_bundle, running
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
    cluster: KubeCluster
    vault: VaultServer
    postgres: PostgresServer
    tls: ServerTls
    """The database server's throwaway CA and certificate."""

    def app_token(self) -> str:
        """The application's Vault token, logged in as its pod would: its service account's token."""
        jwt = service_account_token(self.cluster, APP_NAMESPACE, APP, audience="vault")
        answer = self.vault.client(token="").auth.kubernetes.login(role=APP, jwt=jwt)
        token: str = answer["auth"]["client_token"]
        return token

    def app(self) -> hvac.Client:
        return self.vault.client(self.app_token())


def service_account_token(cluster: KubeCluster, namespace: str, name: str, audience: str | None = None) -> str:
    """A token of the service account (TokenRequest), as the kubelet mounts it in a pod."""
    spec: dict[str, Any] = {"expirationSeconds": 3600}
    if audience is not None:
        spec["audiences"] = [audience]
    answer = kubernetes_client.CoreV1Api(cluster.api()).create_namespaced_service_account_token(
        name, namespace, cast(Any, {"spec": spec}))
    assert answer.status is not None
    return str(answer.status.token)


def prepare_cluster(cluster: KubeCluster) -> str:
    """The application's and the jobs' namespaces and service accounts, and the token reviewer: a service
    account bound to ``system:auth-delegator`` (README, "A Vault this stack does not deploy"). Returns its JWT."""
    core = kubernetes_client.CoreV1Api(cluster.api())
    for namespace in (APP_NAMESPACE, "vault-jobs"):
        core.create_namespace(cast(Any, {"metadata": {"name": namespace}}))
    core.create_namespaced_service_account(APP_NAMESPACE, cast(Any, {"metadata": {"name": APP}}))
    core.create_namespaced_service_account(REVIEWER[0], cast(Any, {"metadata": {"name": REVIEWER[1]}}))
    kubernetes_client.RbacAuthorizationV1Api(cluster.api()).create_cluster_role_binding(cast(Any, {
        "metadata": {"name": "vault-token-reviewer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
        "subjects": [{"kind": "ServiceAccount", "namespace": REVIEWER[0], "name": REVIEWER[1]}]}))
    return service_account_token(cluster, *REVIEWER)


def set_up_database(project: PulumiProject, postgres: PostgresServer) -> None:
    """What the DBA does once (README, "Creating it"): the tables' owner and a table, then the SQL of
    ``platformctl db-setup``, then the admin's password."""
    with postgres.superuser() as session:
        session.execute('CREATE ROLE "app_owner" NOLOGIN')
        session.execute('CREATE DATABASE "app" OWNER "app_owner"')
    with postgres.superuser("app") as session:
        session.execute('SET ROLE "app_owner"')
        session.execute("CREATE TABLE public.orders (id serial PRIMARY KEY, item text)")
        session.execute("RESET ROLE")
        session.execute(project.platformctl("db-setup", STACK).encode())
        session.execute(f"ALTER ROLE vault_admin PASSWORD '{SECRETS['postgresAdminPassword']}'")


@pytest.fixture(scope="module")
def external(tools: Tools, cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppliedExternal]:
    if os.geteuid() != 0:
        pytest.skip("the external Vault's tests need root: Vault runs in a mount namespace of its own, where the "
                    "database's name points at the test's PostgreSQL (CI runs as root)")
    directory = tmp_path_factory.mktemp("external")
    tls = ServerTls.throwaway(DATABASE_HOST, "vault-platform e2e database CA")
    # The database's name, for Vault, at a loopback address of its own (a private /etc/hosts: root).
    postgres = PostgresServer(tls=tls, address="127.0.0.43", port=5432)
    issuer = OidcIssuer(directory / "issuer")
    hosts = {DATABASE_HOST: postgres.address}
    vault = VaultServer(tools.which("vault"), directory / "vault", hosts=hosts)
    reviewer_jwt = prepare_cluster(cluster)
    with running(postgres, issuer, vault):
        bundle = ca_bundle(directory, issuer.tls.ca_pem)
        project = PulumiProject(tools, directory / "cli", {"SSL_CERT_FILE": str(bundle),
                                                            "KUBECONFIG": str(cluster.kubeconfig)})
        shutil.copy(HERE / "stacks" / f"Pulumi.{STACK}.yaml", project.root / "stacks")
        shutil.copytree(HERE / "apps", project.root / "apps", dirs_exist_ok=True)
        config = project.stack_config(STACK)
        kube_config = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]
        cluster_ca = (base64.b64decode(kube_config["certificate-authority-data"]).decode()
                      if "certificate-authority-data" in kube_config else Path(kube_config["certificate-authority"])
                      .read_text())
        config["vault-platform:externalVault"].update(kubernetesHost=kube_config["server"], kubernetesCaCert=cluster_ca)
        config["vault-platform:githubActions"].update(issuer=issuer.url, issuerCaPem=issuer.tls.ca_pem)
        config["vault-platform:oidc"].update(discoveryUrl=issuer.url, discoveryCaPem=issuer.tls.ca_pem)
        config["vault-platform:database"]["connections"][0]["tlsCa"] = tls.ca_pem
        config["vault-platform:audit"]["devices"][0]["filePath"] = str(directory / "vault-audit.log")
        project.edit_stack(STACK, config)
        project.init(STACK, {"vault:address": vault.address}, {
            **{f"vault-platform:{key}": value for key, value in SECRETS.items()},
            "vault-platform:tokenReviewerJwt": reviewer_jwt, "vault:token": vault.root_token})
        set_up_database(project, postgres)
        project.up(STACK)
        yield AppliedExternal(project, cluster, vault, postgres, tls)


def test_it_applies_and_holds_still(external: AppliedExternal) -> None:
    project = external.project
    project.run("preview", "--stack", STACK, "--expect-no-changes", "--non-interactive")
    project.run("refresh", "--stack", STACK, "--yes", "--non-interactive")
    project.run("preview", "--stack", STACK, "--expect-no-changes", "--non-interactive")


def test_every_identity_reaches_in_vault_what_the_evaluator_says(external: AppliedExternal) -> None:
    assert disagreements(external.vault.client(), external.project.access(STACK)["identities"]) == []


def test_the_app_logs_in_with_its_pod_identity_and_reads_only_its_own(external: AppliedExternal) -> None:
    app = external.app()
    secret = app.secrets.kv.v2.read_secret_version(path="production/checkout", raise_on_deleted_version=True)
    assert secret["data"]["data"] == {"api_key": SECRETS["checkoutApiKey"]}
    # The other secret, the secrets' list, sys/ and the database's connection: each refused by Vault.
    for method, path in (("GET", "secret/data/production/billing"), ("LIST", "secret/metadata/production"),
                         ("GET", "sys/mounts"), ("GET", "database/config/postgres")):
        with pytest.raises(VaultError):
            app.adapter.request(method, f"/v1/{path}")
    # Another pod's service account is refused by the role.
    core = kubernetes_client.CoreV1Api(external.cluster.api())
    core.create_namespaced_service_account(APP_NAMESPACE, cast(Any, {"metadata": {"name": "intruder"}}))
    with pytest.raises(VaultError):
        external.vault.client(token="").auth.kubernetes.login(
            role=APP, jwt=service_account_token(external.cluster, APP_NAMESPACE, "intruder", audience="vault"))


def database_session(external: AppliedExternal, username: str, password: str) -> psycopg.Connection[tuple[object, ...]]:
    """As the application connects: TLS, the server's name checked against its certificate."""
    ca = external.project.root.parent / "database-ca.pem"
    ca.write_text(external.tls.ca_pem)
    return psycopg.connect(host=DATABASE_HOST, hostaddr=external.postgres.address, port=external.postgres.port,
                           user=username, password=password, dbname="app", sslmode="verify-full",
                           sslrootcert=str(ca), connect_timeout=10, autocommit=True)


def test_database_credentials_are_unique_hold_their_grants_and_die_on_revocation(external: AppliedExternal) -> None:
    app = external.app()
    first = app.secrets.database.generate_credentials("checkout-role")
    second = app.secrets.database.generate_credentials("checkout-role")
    assert first["data"]["username"] != second["data"]["username"]
    session = database_session(external, first["data"]["username"], first["data"]["password"])
    session.execute("INSERT INTO public.orders (item) VALUES ('book')")
    assert session.execute("SELECT item FROM public.orders").fetchall() == [("book",)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        session.execute("UPDATE public.orders SET item = 'pen'")
    external.vault.client().sys.revoke_lease(first["lease_id"])
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")  # its session ended with the user
    with external.postgres.superuser("app") as admin:
        assert admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s",
                             (first["data"]["username"],)).fetchone() == (0,)


def test_transit_and_pki_within_the_apps_grants_only(external: AppliedExternal) -> None:
    app = external.app()
    plaintext = base64.b64encode(b"4111 1111 1111 1111").decode()
    ciphertext = app.secrets.transit.encrypt_data("checkout-card-data", plaintext)["data"]["ciphertext"]
    assert app.secrets.transit.decrypt_data("checkout-card-data", ciphertext)["data"]["plaintext"] == plaintext
    with pytest.raises(VaultError):
        app.secrets.transit.rotate_key("checkout-card-data")
    issued = app.secrets.pki.generate_certificate("checkout-api", "checkout.production.svc", mount_point="pki_int")
    assert "BEGIN CERTIFICATE" in issued["data"]["certificate"]
    with pytest.raises(VaultError):
        app.secrets.pki.generate_certificate("checkout-api", "billing.production.svc", mount_point="pki_int")
