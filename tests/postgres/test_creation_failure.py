"""A creation statement that fails leaves no half-created user: Vault runs them all in one
transaction, rolled back on error."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest

from environment import DatabaseRole
from tests.postgres.conftest import World


def v_roles(world: World) -> list[tuple[object, ...]]:
    return world.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%%'")


def test_grant_on_a_missing_schema_leaves_no_user(world: World, role: DatabaseRole) -> None:
    first, *others = role.grants
    broken = dataclasses.replace(role, grants=(dataclasses.replace(first, schema="missing_schema"), *others))
    dependencies = world.query("SELECT count(*) FROM pg_shdepend")
    refused: type[psycopg.Error] = psycopg.errors.InvalidSchemaName
    message = 'schema "missing_schema" does not exist'
    if world.setup == "functions":  # refused before the schema is even looked up
        refused, message = psycopg.errors.InsufficientPrivilege, "on schema missing_schema is not grantable"
    with pytest.raises(refused, match=message):
        world.create_user(broken)
    assert v_roles(world) == []
    assert world.query("SELECT count(*) FROM pg_shdepend") == dependencies


def test_failure_in_the_last_statement_undoes_the_first(world: World, role: DatabaseRole) -> None:
    statements = (*world.creation(role), 'GRANT SELECT ON public.no_such_table TO "{{name}}";')
    with pytest.raises(psycopg.errors.UndefinedTable, match=r'relation "public\.no_such_table" does not exist'):
        world.create_user(role, statements=statements)
    assert v_roles(world) == []
    world.create_user(role)  # the same statements without the broken one succeed
    assert len(v_roles(world)) == 1
