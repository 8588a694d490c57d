"""The admin Vault connects as holds exactly what ``admin_setup_statements`` gives it: CREATEROLE
and, per granted schema, the roles' privileges with grant option; nothing more."""

from __future__ import annotations

import pytest

from components.environment.loader import TABLE_PRIVILEGES
from tests.postgres.conftest import UNGRANTED_SCHEMA, World, create_later_table, error_of

DENIED = "42501"


def test_admin_is_createrole_and_nothing_else(world: World) -> None:
    assert world.query("SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin "
                       "FROM pg_roles WHERE rolname = %s", world.admin_user) == [
        (False, True, False, False, False, True)]
    assert world.query("SELECT r.rolname::text FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                       "WHERE m.member = %s::regrole", world.admin_user) == []


@pytest.mark.parametrize("later", [False, True], ids=["existing-tables", "later-tables"])
def test_admin_holds_the_roles_privileges_with_grant_option(world: World, later: bool) -> None:
    privileges: dict[str, set[str]] = {}
    for each in world.roles():
        for grant in each.grants:
            privileges.setdefault(grant.schema, set()).update(grant.privileges)
    table = "accounts"
    if later:
        table = "invoices"
        for schema in privileges:
            create_later_table(world, schema, table)
    held = {
        (schema, privilege): world.query(
            "SELECT has_table_privilege(%s, %s, %s)", world.admin_user, f'"{schema}".{table}',
            f"{privilege} WITH GRANT OPTION")[0][0]
        for schema in privileges for privilege in TABLE_PRIVILEGES}
    assert held == {(schema, privilege): privilege in granted
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
    assert {s: error_of(admin, s) for s in statements} == {s: DENIED for s in statements}
