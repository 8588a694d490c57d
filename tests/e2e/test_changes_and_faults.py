"""Issue 17, changes and faults, on the e2e-prod stack (:mod:`tests.e2e.external`), in this order since
they share its state:

- changes a platform team makes: an application onboarded in a file of its own, a KV secret changed
  under check-and-set, a transit engine removed in the two steps ``removals`` asks for;
- faults: Vault stopped when an ``up`` starts, PostgreSQL down when a connection is written, and a CI
  job whose GitHub OIDC token expires before the provider's first call.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from typing import Any, cast

import pytest
import yaml
from hvac.exceptions import Forbidden, InvalidPath, VaultError  # type: ignore[import-untyped]
from kubernetes import client as kubernetes_client

from environment.identity import DEPLOY_POLICY
from environment.vault_access import CI_ROLE_VARIABLE, TOKEN_FILE_VARIABLE
from platformctl.adapters.stackfile import read_stack, stack_spec
from platformctl.commands.vault_login_command import JWT_VARIABLE
from render.identity import bound_claims
from tests.e2e.external import (
    APP,
    APP_NAMESPACE,
    SECRETS,
    STACK,
    AppliedExternal,
    service_account_token,
)
from tests.e2e.project import PulumiProject
from tests.e2e.servers import wait_until

ORDERS = "orders"
"""The application onboarded here (``apps/e2e/orders.yaml``), its service account and its Vault role."""
ORDERS_SECRET = "ordersApiKey"
TRANSIT_KEY = "checkout-card-data"
CAS_MISMATCH = "check-and-set parameter did not match the current version"
"""Vault's refusal of a KV v2 write naming another version (hashicorp/vault-plugin-secrets-kv, path_data.go)."""
JWT_EXPIRED = "invalid expiration time (exp) claim: token is expired"
"""Vault's refusal of an expired JWT (hashicorp/cap jwt/jwt.go, ``Validate``)."""
JWT_DEFAULT_CLOCK_SKEW = 60
"""Seconds past ``exp`` a JWT is still taken when its role sets no ``clock_skew_leeway``: hashicorp/cap
jwt/jwt.go (``Validate``: 0 means go-jose's ``jwt.DefaultLeeway``, one minute, go-jose/v4 jwt/validation.go).
The role's ``expiration_leeway`` (150 s by default) only applies to a token without ``exp``, which GitHub's
tokens always carry."""


def set_stack_secret(project: PulumiProject, key: str, value: str) -> None:
    project.run("config", "set", "--stack", STACK, "--secret", f"vault-platform:{key}", value)


def edit_section(project: PulumiProject, key: str, edit: Callable[[Any], Any]) -> None:
    """``vault-platform:<key>`` of the copy's stack file replaced by what ``edit`` makes of it (``None``: removed)."""
    path = project.root / "stacks" / f"Pulumi.{STACK}.yaml"
    document = yaml.safe_load(path.read_text())
    value = edit(document["config"].get(f"vault-platform:{key}"))
    if value is None:
        document["config"].pop(f"vault-platform:{key}")
    else:
        document["config"][f"vault-platform:{key}"] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def failed_up(project: PulumiProject) -> str:
    """The output of an ``up`` that must fail."""
    result = project.up(STACK, check=False)
    assert result.returncode != 0, result.stdout[-3000:]
    return result.stdout + result.stderr


def expect_no_changes(project: PulumiProject) -> None:
    project.run("preview", "--stack", STACK, "--expect-no-changes", "--non-interactive")


def kv_data(external: AppliedExternal, path: str) -> tuple[int, dict[str, str]]:
    """The secret's current version and values, read with the root token."""
    answer = external.vault.client().secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    return answer["data"]["metadata"]["version"], answer["data"]["data"]


def transit_key(external: AppliedExternal) -> dict[str, Any]:
    answer: dict[str, Any] = external.vault.client().secrets.transit.read_key(TRANSIT_KEY)["data"]
    return answer


def test_an_app_onboarded_in_its_own_file_logs_in_and_reads_its_secret(external: AppliedExternal) -> None:
    project = external.project
    (project.root / "apps" / "e2e" / f"{ORDERS}.yaml").write_text(yaml.safe_dump({
        "namespace": APP_NAMESPACE, "serviceAccount": ORDERS, "kvPaths": [f"production/{ORDERS}"],
        "environments": {STACK: None}}))
    edit_section(project, "kv", lambda kv: {**kv, "secrets": {
        **kv["secrets"], ORDERS: {"data": {"api_key": {"fromSecret": ORDERS_SECRET}}}}})
    set_stack_secret(project, ORDERS_SECRET, "orders-key-1")
    kubernetes_client.CoreV1Api(external.cluster.api()).create_namespaced_service_account(
        APP_NAMESPACE, cast(Any, {"metadata": {"name": ORDERS}}))
    project.up(STACK)

    jwt = service_account_token(external.cluster, APP_NAMESPACE, ORDERS, audience="vault")
    token = external.vault.client(token="").auth.kubernetes.login(role=ORDERS, jwt=jwt)["auth"]["client_token"]
    orders = external.vault.client(token)
    answer = orders.secrets.kv.v2.read_secret_version(path=f"production/{ORDERS}", raise_on_deleted_version=True)
    assert answer["data"]["data"] == {"api_key": "orders-key-1"}
    with pytest.raises(Forbidden):
        orders.secrets.kv.v2.read_secret_version(path=f"production/{APP}", raise_on_deleted_version=True)


def test_a_kv_secret_changes_only_with_its_current_version(external: AppliedExternal) -> None:
    project = external.project
    path = f"production/{APP}"
    assert kv_data(external, path) == (1, {"api_key": SECRETS["checkoutApiKey"]})

    def change(value: str, cas_version: int) -> None:
        set_stack_secret(project, "checkoutApiKey", value)
        edit_section(project, "kv", lambda kv: {**kv, "secrets": {
            **kv["secrets"], APP: {**kv["secrets"][APP], "casVersion": cas_version}}})

    change("checkout-key-2", 1)  # README, "Changing a KV secret in prod": the current version
    project.up(STACK)
    assert kv_data(external, path) == (2, {"api_key": "checkout-key-2"})

    change("checkout-key-3", 1)  # stale: version 2 is current
    # After 30 s: the provider retries a write Vault answers with 400 (terraform-provider-vault util/util.go,
    # RetryWrite with DefaultRequestOpts: 60 tries 500 ms apart).
    assert CAS_MISMATCH in failed_up(project)
    assert kv_data(external, path) == (2, {"api_key": "checkout-key-2"})
    # The failed write is still pending (the state does not take it for done), and the fix is the version.
    pending = project.preview(STACK)
    assert [step["op"] for step in pending["steps"] if step["urn"].endswith(f"-kv-{APP}")] == ["update"]
    change("checkout-key-3", 2)
    project.up(STACK)
    assert kv_data(external, path) == (3, {"api_key": "checkout-key-3"})


def test_the_transit_engine_is_deleted_only_after_its_removal_is_stated(external: AppliedExternal) -> None:
    project = external.project
    transit = project.stack_config(STACK)["vault-platform:transit"]
    app_file = project.root / "apps" / "e2e" / f"{APP}.yaml"
    app = yaml.safe_load(app_file.read_text())
    app_file.write_text(yaml.safe_dump({key: value for key, value in app.items() if key != "transitKeys"}))
    edit_section(project, "transit", lambda _: None)
    refusal = (f'SecretBackendKey::vault-transit-{TRANSIT_KEY}" cannot be deleted', "because it is protected")
    # The workflow's preview step stops the job first; an up by hand gets as far as the deletion.
    preview = project.run("preview", "--stack", STACK, "--non-interactive", check=False)
    assert preview.returncode != 0
    assert all(part in preview.stdout for part in refusal), preview.stdout[-3000:]
    output = failed_up(project)
    assert all(part in output for part in refusal), output[-3000:]
    assert transit_key(external)["deletion_allowed"] is False
    assert "transit/" in external.vault.client().sys.list_mounted_secrets_engines()["data"]

    # State it, the section still there: the up unprotects the mount and its key, and lets Vault delete the key.
    edit_section(project, "transit", lambda _: transit)
    edit_section(project, "removals", lambda _: ["sys/mounts/transit"])
    project.up(STACK)
    assert transit_key(external)["deletion_allowed"] is True

    edit_section(project, "transit", lambda _: None)
    project.up(STACK)
    assert "transit/" not in external.vault.client().sys.list_mounted_secrets_engines()["data"]
    with pytest.raises(InvalidPath):
        transit_key(external)


def test_an_up_while_vault_is_down_fails_clearly_and_the_next_converges(external: AppliedExternal) -> None:
    project, vault = external.project, external.vault
    edit_section(project, "policies", lambda _: [
        {"name": "orders-reader", "rules": [{"path": f"secret/data/production/{ORDERS}", "capabilities": ["read"]}]}])
    # Vault is stopped before the run rather than in the middle of it: which call fails is then certain (the
    # provider's first, auth/token/lookup-self), where a stop mid-run would race the run's one write.
    vault.stop()
    try:
        result = project.up(STACK, check=False, timeout=120)  # a hang fails the test
    finally:
        vault.launch()
        vault.unseal()
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"dial tcp {vault.host}:{vault.port}: connect: connection refused" in output, output[-3000:]
    with pytest.raises(InvalidPath):
        vault.client().sys.read_policy("orders-reader")

    project.up(STACK)  # no state edit, no refresh
    assert "secret/data/production/orders" in vault.client().sys.read_policy("orders-reader")["data"]["rules"]
    expect_no_changes(project)


def test_vault_stopped_in_the_middle_of_an_up_fails_it_and_the_next_converges(external: AppliedExternal) -> None:
    project, vault = external.project, external.vault
    names = [f"midrun-{number:02d}" for number in range(60)]
    edit_section(project, "policies", lambda section: [*(section or []), *(
        {"name": name, "rules": [{"path": f"secret/data/production/{ORDERS}", "capabilities": ["read"]}]}
        for name in names)])
    # One step at a time, so that the run is mid-way when Vault goes: stopped as soon as the audit log shows
    # the first of these policies written.
    before = len(external.audit_entries())
    run = subprocess.Popen([project.pulumi, "up", "--stack", STACK, "--yes", "--skip-preview", "--non-interactive",
                            "--parallel", "1"], cwd=project.root, env=project.environment, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: any(entry.get("type") == "response" and entry["request"]["path"].startswith(
            "sys/policies/acl/midrun-") for entry in external.audit_entries()[before:]), 60, "the first write")
        vault.stop()
        output, _ = run.communicate(timeout=120)  # a hang fails the test
    finally:
        if run.poll() is None:
            run.kill()
        if vault.process is None:
            vault.launch()
            vault.unseal()
    assert run.returncode != 0
    assert "connection refused" in output, output[-3000:]
    written = [name for name in names if name in vault.client().sys.list_policies()["data"]["policies"]]
    assert 0 < len(written) < len(names)  # it did stop mid-way

    project.up(STACK)  # no state edit, no refresh
    assert set(names) <= set(vault.client().sys.list_policies()["data"]["policies"])
    expect_no_changes(project)


def test_a_connection_written_while_postgresql_is_down_fails_clearly_and_loses_nothing(
        external: AppliedExternal) -> None:
    project = external.project
    database = project.stack_config(STACK)["vault-platform:database"]
    # A new role joins the connection's allowed_roles: the up writes database/config/postgres, which Vault
    # verifies by connecting (verify_connection) before it keeps the new config.
    edit_section(project, "database", lambda section: {**section, "roles": [*section["roles"], {
        "name": "orders-role", "connection": "postgres",
        "grants": [{"privileges": ["SELECT"], "schema": "public"}]}]})
    external.postgres.pause()
    try:
        output = failed_up(project)
    finally:
        external.postgres.resume()
    assert "error verifying connection" in output, output[-3000:]
    assert f"dial tcp {external.postgres.address}:5432: connect: connection refused" in output
    client = external.vault.client()
    assert client.secrets.database.read_connection("postgres")["data"]["allowed_roles"] == ["checkout-role"]
    with pytest.raises(InvalidPath):
        client.secrets.database.read_role("orders-role")
    # Nothing else was lost: the app logs in, reads its secret and gets database credentials.
    app = external.app()
    assert app.secrets.kv.v2.read_secret_version(path=f"production/{APP}", raise_on_deleted_version=True)[
        "data"]["data"] == {"api_key": "checkout-key-3"}
    assert app.secrets.database.generate_credentials("checkout-role")["data"]["username"].startswith("v-")

    edit_section(project, "database", lambda _: database)
    project.up(STACK)
    expect_no_changes(project)


def test_a_ci_up_needs_the_jobs_vault_token_not_its_expired_oidc_token(external: AppliedExternal) -> None:
    """The deploy job logs in first (``platformctl vault-login``) and hands the provider a Vault token in a
    file: its GitHub OIDC token (5 minutes) may expire during a slow cluster step before the provider's
    first Vault call. Here it expires between the login and the ``up``: without the file the provider's
    own login with it is refused, with the file the ``up`` applies its change."""
    project, vault = external.project, external.vault
    spec = stack_spec(read_stack(STACK, project.root))
    github = spec.github_actions
    assert github is not None
    deploy = github.roles[0]
    assert deploy.name == "deploy"
    # The provider writes the role's clock_skew_leeway as 0 (terraform-provider-vault
    # resource_jwt_auth_backend_role.go): Vault's default applies.
    assert vault.client().read(f"auth/{github.path}/role/{deploy.name}")["data"]["clock_skew_leeway"] == 0
    leeway = JWT_DEFAULT_CLOCK_SKEW
    app_file = project.root / "apps" / "e2e" / f"{ORDERS}.yaml"
    app_file.write_text(yaml.safe_dump({**yaml.safe_load(app_file.read_text()), "tokenTtl": "30m"}))
    token_file = project.root.parent / "vault-token"
    project.run("config", "rm", "--stack", STACK, "vault:token")
    try:
        # A job token fetched minutes ago, which Vault takes for a few more seconds.
        now = int(time.time())
        expires = now - leeway + 8
        login = {CI_ROLE_VARIABLE: deploy.name, JWT_VARIABLE: external.issuer.token({
            **bound_claims(github, deploy), "aud": github.audience,
            "sub": f"repo:{github.repository}:environment:{deploy.environment}",
            "iat": now - 290, "nbf": now - 290, "exp": expires})}
        token_file.write_text(project.platformctl("vault-login", STACK, environment=login))
        token_file.chmod(0o600)
        time.sleep(max(0.0, expires + leeway + 1 - time.time()))
        with pytest.raises(VaultError, match=re.escape(JWT_EXPIRED)):
            vault.client(token="").auth.jwt.jwt_login(role=deploy.name, jwt=login[JWT_VARIABLE], path=github.path)
        without_file = project.up(STACK, check=False, environment=login)
        assert without_file.returncode != 0
        assert JWT_EXPIRED in without_file.stdout, without_file.stdout[-3000:]

        job = {**login, TOKEN_FILE_VARIABLE: str(token_file)}
        before = len(external.audit_entries())
        # As the deploy runs it: refreshed first (the failed up may have left its values in the state), with
        # the program's providers, which log in with the job's file (the failed up left the JWT login in
        # the state's provider). The workflows set PULUMI_RUN_PROGRAM, which the CLI reads as --run-program
        # (pulumi/pulumi sdk/go/common/env/env.go, RunProgram; pkg/cmd/pulumi/operations/up.go).
        applied = project.up(STACK, "--refresh", "--diff", environment={**job, "PULUMI_RUN_PROGRAM": "true"})
        project.platformctl("vault-login", STACK, "--revoke", environment=job)
    finally:
        project.run("config", "set", "--stack", STACK, "--secret", "vault:token", vault.root_token)
    role_path = f"auth/{spec.kubernetes_auth_path}/role/{ORDERS}"
    writes = [entry for entry in external.audit_entries()[before:] if entry["type"] == "request"
              and (entry["request"]["operation"], entry["request"]["path"]) == ("update", role_path)]
    assert [entry["auth"]["policies"] for entry in writes] == [["default", DEPLOY_POLICY]]
    # On a failure, what the up changed and what Vault was sent (the audit log keeps numbers in clear).
    assert vault.client().read(role_path)["data"]["token_ttl"] == 1800, (
        applied.stdout[-6000:], [entry["request"].get("data") for entry in writes])
