"""The admin Vault connects as holds exactly what its setup gives it. ``functions``: LOGIN, EXECUTE on
the four functions, nothing else; their NOLOGIN owner holds CREATEROLE and the roles' privileges
with grant option. ``createrole``: the admin holds those itself."""

from __future__ import annotations

import pytest

from environment.database import TABLE_PRIVILEGES
from render.admin_setup import OWNER, SCHEMA
from tests.postgres.conftest import UNGRANTED_SCHEMA, World, create_later_table, error_of

DENIED = "42501"
FUNCTIONS = ["create_user(text,text,text,jsonb)", "drop_user(text)", "renew_user(text,text)",
             "set_password(text,text)"]


def attributes(world: World, role: str) -> list[tuple[object, ...]]:
    return world.query("SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin "
                       "FROM pg_roles WHERE rolname = %s", role)


def test_roles_have_exactly_their_attributes_and_no_membership(world: World) -> None:
    if world.setup == "functions":
        assert attributes(world, world.admin_user) == [(False, False, False, False, False, True)]
        assert attributes(world, OWNER) == [(False, True, False, False, False, False)]
    else:
        assert attributes(world, world.admin_user) == [(False, True, False, False, False, True)]
        assert attributes(world, OWNER) == []
    assert world.query("SELECT r.rolname::text FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                       "WHERE m.member IN (SELECT oid FROM pg_roles WHERE rolname IN (%s, %s))",
                       world.admin_user, OWNER) == []


def test_functions_are_locked_down(world: World) -> None:
    """Owned by the NOLOGIN owner, SECURITY DEFINER with a pinned search_path, executable by the admin
    alone (not PUBLIC); the schema and its tables are the superuser's, out of the admin's reach."""
    if world.setup != "functions":
        assert world.query("SELECT nspname FROM pg_namespace WHERE nspname = %s", SCHEMA) == []
        return
    rows = world.query(
        "SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner)::text, p.prosecdef, p.proconfig, "
        "has_function_privilege(%s, p.oid, 'EXECUTE'), has_function_privilege('public', p.oid, 'EXECUTE') "
        "FROM pg_proc p WHERE p.pronamespace = %s::regnamespace ORDER BY 1", world.admin_user, SCHEMA)
    assert rows == [(f"{SCHEMA}.{signature}", OWNER, True, ["search_path=pg_catalog, pg_temp"], True, False)
                    for signature in FUNCTIONS]
    admin = world.admin()
    statements = [
        f"INSERT INTO {SCHEMA}.static_user VALUES ('app_owner')",
        f"INSERT INTO {SCHEMA}.grantable VALUES ('{UNGRANTED_SCHEMA}', 'SELECT')",
        f"DELETE FROM {SCHEMA}.issued_user",
        f"CREATE FUNCTION {SCHEMA}.mine() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        f"CREATE OR REPLACE FUNCTION {SCHEMA}.drop_user(username text) RETURNS void LANGUAGE sql AS ''",
        f"ALTER FUNCTION {SCHEMA}.drop_user(text) SECURITY INVOKER",
        f"SET ROLE {OWNER}",
    ]
    assert {s: error_of(admin, s) for s in statements} == {s: DENIED for s in statements}


@pytest.mark.parametrize("later", [False, True], ids=["existing-tables", "later-tables"])
def test_granting_role_holds_the_roles_privileges_with_grant_option(world: World, later: bool) -> None:
    privileges: dict[str, set[str]] = {}
    for each in world.roles():
        for grant in each.grants:
            privileges.setdefault(grant.schema, set()).update(grant.privileges)
    table = "accounts"
    if later:
        table = "invoices"
        for schema in privileges:
            create_later_table(world, schema, table)
    for holder, expected in ((world.grantor, True), (world.admin_user, world.setup == "createrole")):
        held = {
            (schema, privilege): world.query(
                "SELECT has_table_privilege(%s, %s, %s)", holder, f'"{schema}".{table}',
                f"{privilege} WITH GRANT OPTION")[0][0]
            for schema in privileges for privilege in TABLE_PRIVILEGES}
        assert held == {(schema, privilege): expected and privilege in granted
                        for schema, granted in privileges.items() for privilege in TABLE_PRIVILEGES}


def test_admin_cannot_touch_data_beyond_its_grants(world: World) -> None:
    admin = world.admin()
    statements = [
        f"SELECT count(*) FROM {UNGRANTED_SCHEMA}.accounts",
        "DELETE FROM public.accounts",
        "DROP TABLE public.accounts",
        "CREATE TABLE public.mine (id integer)",
        "CREATE ROLE intruder SUPERUSER",
        "ALTER ROLE CURRENT_USER SUPERUSER",
    ]
    if world.setup == "functions":  # holds no table privilege at all
        statements += ["SELECT count(*) FROM public.accounts", "CREATE ROLE intruder"]
    assert {s: error_of(admin, s) for s in statements} == {s: DENIED for s in statements}
