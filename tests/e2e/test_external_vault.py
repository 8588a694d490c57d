"""The e2e-prod stack (:mod:`tests.e2e.external`): it holds still, every identity's access in Vault is
what the offline evaluator says, and an application gets, for real, exactly what its file declares."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest
from hvac.exceptions import VaultError  # type: ignore[import-untyped]
from kubernetes import client as kubernetes_client

from environment.operations import SNAPSHOT_IDENTITY
from platformctl.adapters.stackfile import read_stack, stack_spec
from tests.e2e.access_check import disagreements
from tests.e2e.ci import CiTarget, as_job, check_claims, check_deploy, check_preview
from tests.e2e.external import (
    APP,
    APP_NAMESPACE,
    DATABASE_HOST,
    NEEDS_ROOT,
    SECRETS,
    STACK,
    AppliedExternal,
    applied_external,
    service_account_token,
)
from tests.e2e.servers import Cluster, VaultServer, wait_until
from tests.e2e.tools import Tools


def test_it_applies_and_holds_still(external: AppliedExternal) -> None:
    project = external.project
    project.run("preview", "--stack", STACK, "--expect-no-changes", "--non-interactive")
    project.run("refresh", "--stack", STACK, "--yes", "--non-interactive")
    project.run("preview", "--stack", STACK, "--expect-no-changes", "--non-interactive")


def test_every_identity_reaches_in_vault_what_the_evaluator_says(external: AppliedExternal) -> None:
    assert disagreements(external.vault.client(), external.project.access(STACK)["identities"]) == []


def test_a_staging_shaped_stack_applies_holds_still_and_grants_what_the_evaluator_says(
        tools: Tools, cluster: Cluster, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)
    stack = "e2e-staging"  # staging's rules: no check-and-set, the same engines and logins
    with applied_external(tools, cluster, tmp_path, stack=stack) as staging:
        staging.project.run("preview", "--stack", stack, "--expect-no-changes", "--non-interactive")
        staging.project.run("refresh", "--stack", stack, "--yes", "--non-interactive")
        staging.project.run("preview", "--stack", stack, "--expect-no-changes", "--non-interactive")
        assert disagreements(staging.vault.client(), staging.project.access(stack)["identities"]) == []
        assert staging.app().secrets.kv.v2.read_secret_version(
            path="staging/checkout", raise_on_deleted_version=True)["data"]["data"] == {
            "api_key": SECRETS["checkoutApiKey"]}


def ci(external: AppliedExternal) -> CiTarget:
    github = stack_spec(read_stack(STACK, external.project.root)).github_actions
    assert github is not None
    return CiTarget(external.project, STACK, external.vault, external.issuer, github, external.audit_entries)


def test_ci_logs_in_only_with_exact_claims_and_deploys_with_nothing_denied(external: AppliedExternal) -> None:
    check_claims(ci(external))
    check_deploy(ci(external))


def test_a_pull_requests_preview_reads_everything_and_writes_nothing(external: AppliedExternal) -> None:
    check_preview(ci(external))


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


def test_a_snapshot_the_job_takes_restores_into_a_new_vault(external: AppliedExternal, tmp_path: Path) -> None:
    """Last in the module: the restored Vault stands in for the applied one (README, "Restoring")."""
    # The job's own login (its service account, its Kubernetes auth role) and its policy alone.
    jwt = service_account_token(external.cluster, external.jobs_namespace, SNAPSHOT_IDENTITY, audience="vault")
    login = external.vault.client(token="").auth.kubernetes.login(role=SNAPSHOT_IDENTITY, jwt=jwt)
    assert login["auth"]["policies"] == [SNAPSHOT_IDENTITY]
    job = external.vault.client(login["auth"]["client_token"])
    snapshot = job.sys.take_raft_snapshot()
    assert snapshot.status_code == 200
    with pytest.raises(VaultError):
        job.sys.list_mounted_secrets_engines()
    old = external.vault
    old.stop()
    new = VaultServer(old.binary, tmp_path / "restored", hosts=old.hosts, stands_in_for=old)
    try:
        new.start()
        new.client().sys.force_restore_raft_snapshot(snapshot.content)
        # The restored data is sealed by the old cluster's keys: the operator unseals it with those.
        new.unseal_key, new.root_token = old.unseal_key, old.root_token
        wait_until(lambda: new.client(token="").sys.read_seal_status()["sealed"], 30, "the restored Vault to seal")
        new.unseal()
        external.vault = new
        # As the deploy job (the state's provider logs in as the CI tests above left it): nothing to change.
        target = ci(external)
        as_job(target, target.github.deploy, "preview", "--expect-no-changes")
        secret = external.app().secrets.kv.v2.read_secret_version(path="production/checkout",
                                                                 raise_on_deleted_version=True)
        assert secret["data"]["data"] == {"api_key": SECRETS["checkoutApiKey"]}
    finally:
        new.stop()
