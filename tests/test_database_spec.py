"""The spec's database rules: which admin setup, TLS settings and statements a stack may declare,
each refusal one message naming the key, and each accepted value carried into the connection."""

from __future__ import annotations

from typing import Any

import pytest

from render.admin_setup import ConnectionNeeds, setup_statements
from tests.postgres.server import ServerTls
from tests.support import declare_stack, refusal, spec_of

P = "vault-platform:database"
C = f"{P}.connections[0]"
CREATE = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"
FIX_CREATE = f"write {CREATE};"
CA = ServerTls.throwaway("db.example.com")
FIXED_USER = CREATE.replace('"{{name}}"', "app_user")
NO_PASSWORD = CREATE.replace(" PASSWORD '{{password}}'", "")
NO_EXPIRY = CREATE.replace(" VALID UNTIL '{{expiration}}'", "")
UNQUOTED = CREATE.replace('"{{name}}"', "{{name}}")


def refused(stack: str, changes: dict[str, Any], key: str) -> tuple[str, str]:
    """(problem, fix) of the refusal at ``key`` (written with indexes, as in ``changes``)."""
    error = refusal(stack, changes, key)
    return error.problem, error.fix


class TestTls:
    @pytest.mark.parametrize("stack", ["staging", "prod"])
    def test_outside_dev_the_default_is_verify_full(self, stack: str) -> None:
        spec = spec_of(stack)
        assert spec.database is not None
        assert [(c.ssl_mode, c.tls_ca) for c in spec.database.connections] == [("verify-full", None)]

    @pytest.mark.parametrize("mode", ["disable", "allow", "prefer", "require"])
    @pytest.mark.parametrize("stack", ["staging", "prod"])
    def test_outside_dev_modes_that_do_not_verify_are_refused(self, stack: str, mode: str) -> None:
        assert refused(stack, {f"{C}.sslMode": mode}, f"{C}.sslMode") == (
            f"{mode} does not verify the server in {stack}: whoever answers for the host name gets "
            "the admin password", "remove sslMode (verify-full is the default), and set tlsCa when the server's CA "
            "is not a public one")

    def test_verify_ca_needs_the_databases_own_ca(self) -> None:
        assert refused("prod", {f"{C}.sslMode": "verify-ca"}, f"{C}.sslMode")[0] == (
            "verify-ca against the public roots accepts any certificate they signed, for any name")
        spec = spec_of("prod", {f"{C}.sslMode": "verify-ca", f"{C}.tlsCa": CA.ca_pem})
        assert spec.database is not None
        assert spec.database.connections[0].ssl_mode == "verify-ca"

    @pytest.mark.parametrize(("host", "problem"), [
        ("postgres", "'postgres' is not a fully qualified host name: prod connections verify the name the server's "
                     "certificate carries, and a short name resolves through the search domains"),
        ("10.0.0.5", "'10.0.0.5' is an IP address: prod connections verify the name the server's certificate "
                     "carries"),
    ])
    def test_outside_dev_the_host_is_a_fully_qualified_name(self, host: str, problem: str) -> None:
        assert refused("prod", {f"{C}.host": host}, f"{C}.host")[0] == problem

    def test_dev_may_use_any_mode_and_a_short_host(self) -> None:
        spec = spec_of("dev", {f"{C}.inCluster": False, f"{C}.host": "postgres", f"{C}.sslMode": "require",
                               f"{C}.adminPassword": {"fromSecret": "devPostgresPassword"},
                               "vault-platform:devPostgresPassword": "placeholder"},
                       secret_keys={"vault-platform:devPostgresPassword", "vault:token"})
        assert spec.database is not None
        assert (spec.database.connections[0].host, spec.database.connections[0].ssl_mode) == ("postgres", "require")

    def test_the_ca_goes_to_vault_as_the_connections_tls_ca(self) -> None:
        declaration = declare_stack("prod", {f"{C}.tlsCa": CA.ca_pem})
        assert declaration.error is None
        [connection] = declaration.of_type("vault:database/secretBackendConnection:SecretBackendConnection")
        postgresql = connection.inputs["postgresql"]
        assert postgresql["tlsCa"] == CA.ca_pem
        assert postgresql["connectionUrl"].endswith("@postgres.prod.internal:5432/app?sslmode=verify-full")
        without = declare_stack("prod")
        [plain] = without.of_type("vault:database/secretBackendConnection:SecretBackendConnection")
        assert "tlsCa" not in plain.inputs["postgresql"]

    @pytest.mark.parametrize(("value", "problem"), [
        ("not a certificate", "is not PEM certificates (no start line: cadata does not contain a certificate"),
        (CA.certificate_pem, "holds no CA certificate (a server certificate cannot sign another)"),
    ])
    def test_tls_ca_must_be_ca_certificates(self, value: str, problem: str) -> None:
        assert refused("prod", {f"{C}.tlsCa": value}, f"{C}.tlsCa")[0].startswith(problem)

    def test_tls_ca_without_verification_is_refused(self) -> None:
        assert refused("dev", {f"{C}.tlsCa": CA.ca_pem}, f"{C}.tlsCa") == (
            "sslMode disable never verifies the server's certificate",
            "set sslMode to verify-full, or remove tlsCa")


class TestAdminSetup:
    @pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
    def test_functions_is_the_default(self, stack: str) -> None:
        spec = spec_of(stack)
        assert spec.database is not None
        assert {c.admin_setup for c in spec.database.connections} == {"functions"}

    @pytest.mark.parametrize(("key", "user", "problem"), [
        ("adminUser", "postgres", "'postgres' is a superuser"),
        ("adminUser", "vault_api_owner", "'vault_api_owner' is the SECURITY DEFINER functions' owner"),
        ("tableOwner", "postgres", "'postgres' is a superuser"),
        ("adminUser", "app_owner", "'app_owner' is also the tableOwner, which owns the tables"),
    ])
    def test_the_admin_is_no_privileged_role(self, key: str, user: str, problem: str) -> None:
        assert refused("prod", {f"{C}.{key}": user}, f"{C}.{key}")[0] == problem

    def test_setup_scripts_differ_only_where_the_setups_do(self) -> None:
        spec = spec_of("prod", {f"{C}.adminSetup": "createrole"})
        assert spec.database is not None
        script = setup_statements(ConnectionNeeds.of(spec.database.connections[0], spec.database.roles))
        assert script[:2] == (
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'vault_admin') THEN "
            'CREATE ROLE "vault_admin" WITH LOGIN CREATEROLE NOSUPERUSER NOCREATEDB NOREPLICATION NOBYPASSRLS; '
            "END IF; END $$;",
            'ALTER ROLE "vault_admin" WITH LOGIN CREATEROLE NOSUPERUSER NOCREATEDB NOREPLICATION NOBYPASSRLS;')
        assert not [s for s in script if "vault_api" in s]


class TestStaticRoles:
    @pytest.mark.parametrize(("username", "problem"), [
        ("vault_admin", "'vault_admin' is the connection's admin user, whose password Vault already rotates as the "
                        "connection's root credential"),
        ("postgres", "'postgres' is a superuser"),
        ("app_owner", "'app_owner' is the connection's tableOwner, which owns the tables"),
        ("vault_api_owner", "'vault_api_owner' is the owner of the SECURITY DEFINER functions"),
    ])
    def test_privileged_users_are_refused(self, username: str, problem: str) -> None:
        static = {f"{P}.staticRoles": [{"name": "r", "connection": "postgres", "username": username}]}
        assert refused("prod", static, f"{P}.staticRoles[0].username")[0] == problem


def statements_refusal(statements: list[str], key: str) -> tuple[str, str]:
    return refused("prod", {f"{C}.adminSetup": "createrole", f"{P}.roles[0].grants": None,
                            f"{P}.roles[0].creationStatements": statements}, f"{P}.roles[0].{key}")


class TestCreationStatements:
    """Only statements that create Vault's own user, with its password and expiry, are accepted
    (what each accepted form does on PostgreSQL: tests/postgres/test_statement_forms.py)."""

    @pytest.mark.parametrize(("statements", "key", "problem", "fix"), [
        ([], "creationStatements", "holds no statement", f"start with {CREATE};"),
        (["  "], "creationStatements[0]", "is empty", "remove it, or write the statement"),
        ([CREATE, ""], "creationStatements[1]", "is empty", "remove it, or write the statement"),
        ([FIXED_USER], "creationStatements[0]", f"`{FIXED_USER}` creates the fixed role app_user: every "
         "credentials request must create its own user", f"create Vault's generated user: {CREATE};"),
        ([NO_PASSWORD], "creationStatements[0]",
         f"`{NO_PASSWORD}` has no PASSWORD '{{{{password}}}}': Vault could not hand out the password", FIX_CREATE),
        ([NO_EXPIRY], "creationStatements[0]",
         f"`{NO_EXPIRY}` has no VALID UNTIL '{{{{expiration}}}}': the user would outlive its lease", FIX_CREATE),
        ([CREATE.replace("'{{expiration}}'", "'infinity'")], "creationStatements[0]",
         f"`{CREATE.replace('{{expiration}}', 'infinity')}` sets a fixed expiry instead of Vault's VALID UNTIL "
         "'{{expiration}}'", FIX_CREATE),
        ([CREATE.replace("'{{password}}'", "'hunter2'")], "creationStatements[0]",
         f"`{CREATE.replace('{{password}}', 'hunter2')}` sets a fixed password instead of Vault's PASSWORD "
         "'{{password}}'", FIX_CREATE),
        ([CREATE.replace("LOGIN", "LOGIN SUPERUSER")], "creationStatements[0]",
         f"`{CREATE.replace('LOGIN', 'LOGIN SUPERUSER')}` sets 'SUPERUSER', which Vault's users never get",
         f"keep to {CREATE};"),
        ([CREATE.replace(" LOGIN", "")], "creationStatements[0]",
         f"`{CREATE.replace(' LOGIN', '')}` creates a role that cannot log in", FIX_CREATE),
        ([UNQUOTED], "creationStatements[0]",
         f"`{UNQUOTED}` uses {{{{name}}}} without double quotes; Vault's names hold '-' and capitals",
         'write "{{name}}"'),
        ([CREATE, 'GRANT app_owner TO "{{name}}"'], "creationStatements[1]",
         '`GRANT app_owner TO "{{name}}"` grants role membership, which carries whatever that role may do',
         "grant table, sequence or schema privileges instead"),
        ([CREATE, "GRANT SELECT ON public.accounts TO reporting"], "creationStatements[1]",
         "`GRANT SELECT ON public.accounts TO reporting` grants to reporting, not to Vault's user \"{{name}}\"",
         'grant to "{{name}}"'),
        ([f'{CREATE}; GRANT SELECT ON public.accounts TO "{{{{name}}}}" WITH GRANT OPTION'], "creationStatements[0]",
         '`GRANT SELECT ON public.accounts TO "{{name}}" WITH GRANT OPTION` lets the user grant further',
         "remove WITH ... OPTION"),
        ([CREATE, "CREATE ROLE other"], "creationStatements[1]", "`CREATE ROLE other` creates a second role",
         "create only Vault's user, once, first"),
        (['GRANT SELECT ON public.accounts TO "{{name}}"', CREATE], "creationStatements[0]",
         '`GRANT SELECT ON public.accounts TO "{{name}}"` comes before Vault\'s user is created',
         f"start with {CREATE};"),
        ([CREATE, "DO $$ BEGIN NULL; END $$"], "creationStatements[1]",
         "is a block Vault runs whole (it contains END), which cannot be checked",
         "declare grants, or write plain CREATE ROLE, GRANT and ALTER ROLE statements"),
        ([CREATE, 'ALTER ROLE "{{name}}" SET role = app_owner'], "creationStatements[1]",
         '`ALTER ROLE "{{name}}" SET role = app_owner` sets role, which changes who the user\'s sessions act as',
         "remove it"),
        ([CREATE, "DROP TABLE public.accounts"], "creationStatements[1]",
         "`DROP TABLE public.accounts` is not a statement the platform accepts",
         'use GRANT <privileges> ON <objects> TO "{{name}}" or ALTER ROLE "{{name}}" SET <parameter> TO <value>'),
    ])
    def test_refused_with_one_message(self, statements: list[str], key: str, problem: str, fix: str) -> None:
        assert statements_refusal(statements, key) == (problem, fix)

    def test_functions_setup_takes_grants_only(self) -> None:
        verbatim = {f"{P}.roles[0].grants": None, f"{P}.roles[0].creationStatements": [CREATE]}
        assert refused("prod", verbatim, f"{P}.roles[0].creationStatements") == (
            "connection 'postgres' uses the functions admin setup, whose admin can only call vault_api.create_user",
            "declare grants instead, or set adminSetup: createrole on connection 'postgres' (see README)")

    def test_grants_on_system_schemas_are_refused(self) -> None:
        assert refused("prod", {f"{P}.roles[0].grants[0].schema": "vault_api"}, f"{P}.roles[0].grants[0].schema")[
            0] == "'vault_api' is a system schema"
