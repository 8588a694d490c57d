"""Renewal moves the expiry Vault set at creation; once ``VALID UNTIL`` has passed the server
refuses the login, and a renewal brings it back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

from environment import DatabaseRole
from tests.postgres.conftest import World
from tests.postgres.vault_plugin import change_expiration

REFUSED = "password authentication failed"


def valid_until(world: World, username: str) -> object:
    [(moment,)] = world.query("SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", username)
    return moment


def test_creation_sets_and_renewal_moves_the_expiry(world: World, role: DatabaseRole) -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    credentials = world.create_user(role, expires_in=timedelta(hours=1))
    assert valid_until(world, credentials.username) == credentials.expires
    # Rendered with a non-UTC offset, the Go layout's -0700 part must be honoured.
    renewed = (start + timedelta(hours=3)).astimezone(timezone(timedelta(hours=2)))
    change_expiration(world.admin(), world.renewal, credentials.username, renewed)
    assert valid_until(world, credentials.username) == start + timedelta(hours=3)


def test_login_is_refused_once_expired_and_allowed_again_after_renewal(world: World, role: DatabaseRole) -> None:
    credentials = world.create_user(role)
    world.login(credentials.username, credentials.password).close()
    change_expiration(world.admin(), world.renewal, credentials.username,
                      datetime.now(UTC) - timedelta(seconds=2))
    with pytest.raises(psycopg.OperationalError, match=REFUSED):
        world.login(credentials.username, credentials.password)
    change_expiration(world.admin(), world.renewal, credentials.username,
                      datetime.now(UTC) + timedelta(minutes=5))
    with world.login(credentials.username, credentials.password) as session:
        assert session.execute("SELECT current_user").fetchone() == (credentials.username,)


def test_credentials_created_already_expired_cannot_log_in(world: World, role: DatabaseRole) -> None:
    credentials = world.create_user(role, expires_in=timedelta(seconds=-2))
    with pytest.raises(psycopg.OperationalError, match=REFUSED):
        world.login(credentials.username, credentials.password)


def test_renewing_a_revoked_user_fails(world: World, role: DatabaseRole) -> None:
    gone = "v-kubernet-api-role-Gone0000000000000000-1732790000"
    refused: type[psycopg.Error] = psycopg.errors.UndefinedObject
    message = f'role "{gone}" does not exist'
    if world.setup == "functions":
        refused, message = psycopg.errors.InsufficientPrivilege, f"{gone} was not created by vault_api.create_user"
    with pytest.raises(refused, match=message):
        change_expiration(world.admin(), world.renewal, gone, datetime.now(UTC) + timedelta(hours=1))

