"""A creation statement that fails leaves no half-created user: Vault runs them all in one
transaction, rolled back on error."""

from __future__ import annotations

import psycopg
import pytest

from components.environment import DatabaseRole
from components.render.sql import creation_statements
from tests.postgres.conftest import World
from tests.support import edited, spec_of


def config_index(stack: str, role_name: str) -> int:
    roles = edited(stack).config["vault-platform:database"]["roles"]
    return next(index for index, item in enumerate(roles) if item["name"] == role_name)


def v_roles(world: World) -> list[tuple[object, ...]]:
    return world.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%%'")


def test_grant_on_a_missing_schema_leaves_no_user(world: World, role: DatabaseRole) -> None:
    index = config_index(world.spec.stack, role.name)
    broken_spec = spec_of(world.spec.stack, {
        f"vault-platform:database.roles[{index}].grants[0].schema": "missing_schema"})
    assert broken_spec.database is not None
    broken = broken_spec.database.role[role.name]
    dependencies = world.query("SELECT count(*) FROM pg_shdepend")
    with pytest.raises(psycopg.errors.InvalidSchemaName, match='schema "missing_schema" does not exist'):
        world.create_user(broken)
    assert v_roles(world) == []
    assert world.query("SELECT count(*) FROM pg_shdepend") == dependencies


def test_failure_in_the_last_statement_undoes_the_first(world: World, role: DatabaseRole) -> None:
    statements = (*creation_statements(role), 'GRANT SELECT ON public.no_such_table TO "{{name}}";')
    with pytest.raises(psycopg.errors.UndefinedTable, match=r'relation "public\.no_such_table" does not exist'):
        world.create_user(role, statements=statements)
    assert v_roles(world) == []
    world.create_user(role)  # the same statements without the broken one succeed
    assert len(v_roles(world)) == 1
