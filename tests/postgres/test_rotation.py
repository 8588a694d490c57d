"""The connection's root rotation changes the admin's own password; a static role's rotation changes
its user's password. Old passwords stop working, new ones work, over SCRAM-SHA-256."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from render.sql import ROOT_ROTATION_STATEMENTS
from tests.postgres.conftest import SETUPS, World, in_setup, make_world
from tests.postgres.server import PostgresServer
from tests.postgres.vault_plugin import change_password, generate_password
from tests.support import spec_of

REFUSED = "password authentication failed"
STATIC = {"vault-platform:database.staticRoles": [
    {"name": "reporting", "connection": "postgres", "username": "reporting_user"}]}


@pytest.fixture(params=[("prod", setup) for setup in SETUPS], ids="-".join)
def static_world(request: pytest.FixtureRequest, postgres: PostgresServer) -> Iterator[World]:
    stack, setup = request.param
    spec = spec_of(stack, STATIC)
    assert spec.database is not None
    yield from make_world(postgres, spec, in_setup(spec.database.connection["postgres"], setup))


def test_root_rotation_changes_the_admins_password(world: World) -> None:
    old = world.admin_password
    new = generate_password()
    change_password(world.admin(), ROOT_ROTATION_STATEMENTS, world.admin_user, new)
    with pytest.raises(psycopg.OperationalError, match=REFUSED):
        world.login(world.admin_user, old)
    with world.login(world.admin_user, new) as session:
        assert session.execute("SELECT current_user").fetchone() == (world.admin_user,)


def test_static_rotation_changes_the_users_password(static_world: World) -> None:
    assert static_world.spec.database is not None
    [static] = static_world.spec.database.static_roles
    old, new = generate_password(), generate_password()
    with static_world.superuser() as db:  # the existing user Vault takes over
        db.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(static.username), sql.Literal(old)))
    static_world.login(static.username, old).close()
    change_password(static_world.admin(), static_world.static_rotation, static.username, new)
    with pytest.raises(psycopg.OperationalError, match=REFUSED):
        static_world.login(static.username, old)
    with static_world.login(static.username, new) as session:
        assert session.execute("SELECT current_user").fetchone() == (static.username,)


def test_static_rotation_of_a_superuser_is_refused(static_world: World) -> None:
    """The admin is no superuser, so it cannot take over one: the rotation fails, nothing changes
    (the functions refuse it themselves, before PostgreSQL would)."""
    assert static_world.spec.database is not None
    [static] = static_world.spec.database.static_roles
    old = generate_password()
    with static_world.superuser() as db:
        db.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
            sql.Identifier(static.username), sql.Literal(old)))
    message = "must be superuser to alter superuser roles or change superuser attribute"
    if static_world.setup == "functions":
        message = f"vault_api: {static.username} is a privileged role"
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=message):
        change_password(static_world.admin(), static_world.static_rotation, static.username, generate_password())
    static_world.login(static.username, old).close()
