"""The test mirror of Vault's plugin gets Vault's rules right: the SCRAM verifier is byte for byte
what PostgreSQL itself stores, statements are split or run whole as Vault does, names, passwords
and expirations look like Vault's."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from psycopg import sql

from environment import AdminSetup, DatabaseRole, EnvironmentSpec
from render.sql import (
    ROOT_ROTATION_STATEMENTS,
    creation_statements,
    renew_statements,
    revocation_statements,
    static_rotation_statements,
)
from tests.postgres import vault_plugin
from tests.postgres.server import PostgresServer

NOW = datetime(2024, 11, 28, 10, 33, 20, tzinfo=UTC)  # unix time 1732790000


def test_scram_verifier_is_what_postgresql_stores(postgres: PostgresServer) -> None:
    password = "Ab3-dEf9hIjKlMnOpQrS"
    with postgres.superuser() as db:
        db.execute("DROP ROLE IF EXISTS scram_probe")
        db.execute(sql.SQL("CREATE ROLE scram_probe PASSWORD {}").format(sql.Literal(password)))
        [(stored,)] = db.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_probe'").fetchall()
        db.execute("DROP ROLE scram_probe")
    assert isinstance(stored, str)
    match = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$[^:]+:.+", stored)
    assert match is not None
    iterations, salt = int(match[1]), base64.b64decode(match[2])
    assert iterations == vault_plugin.SCRAM_ITERATIONS
    assert vault_plugin.scram_verifier(password, salt) == stored
    assert vault_plugin.scram_verifier(password + "x", salt) != stored


def test_scram_verifier_has_a_fresh_16_byte_salt() -> None:
    first, second = vault_plugin.scram_verifier("pw"), vault_plugin.scram_verifier("pw")
    assert first != second
    salt = first.split(":")[1].split("$")[0]
    assert len(base64.b64decode(salt)) == 16


def test_createrole_revocation_runs_whole_and_everything_else_is_split(
        declared: tuple[EnvironmentSpec, DatabaseRole, AdminSetup]) -> None:
    """The functions setup's statements are single calls: splitting leaves each whole."""
    _, role, setup = declared
    assert [vault_plugin.contains_multiline_statement(s) for s in revocation_statements(setup)] == [
        setup == "createrole"]
    for statements in (creation_statements(role, setup), renew_statements(setup), ROOT_ROTATION_STATEMENTS,
                       static_rotation_statements(setup)):
        assert [vault_plugin.contains_multiline_statement(s) for s in statements] == [False] * len(statements)
        if setup == "functions":
            assert [len(vault_plugin.split_statements(s)) for s in statements] == [1] * len(statements)


@pytest.mark.parametrize(("statement", "multiline"), [
    ("DO $$ BEGIN PERFORM 1; END $$;", True),
    ("SELECT 'END'", False),
    ('SELECT 1 AS "END"', False),
    ("ALTER TABLE x APPEND; SELECT ending", False),
    ("SELECT 'a', 'b' END", True),
])
def test_multiline_detection(statement: str, multiline: bool) -> None:
    assert vault_plugin.contains_multiline_statement(statement) is multiline


def test_split_statements() -> None:
    assert vault_plugin.split_statements(" A;\n B ;; ") == ["A", "B"]
    assert vault_plugin.split_statements(base64.b64encode(b"A; B").decode()) == ["A", "B"]
    assert vault_plugin.split_statements('["A; B", "C"]') == ["A; B", "C"]
    assert vault_plugin.split_statements("   ") == []


def test_substitute_is_textual() -> None:
    assert vault_plugin.substitute("\"{{name}}\" '{{expiration}}' {{other}}", {
        "name": "v-a-b", "expiration": "2026-11-28 14:03:07+0000"}) == (
        "\"v-a-b\" '2026-11-28 14:03:07+0000' {{other}}")


def test_expiration_uses_the_go_layout() -> None:
    assert vault_plugin.format_expiration(datetime(2026, 11, 28, 14, 3, 7, tzinfo=UTC)) == "2026-11-28 14:03:07+0000"
    assert vault_plugin.format_expiration(
        datetime(2026, 11, 28, 14, 3, 7, tzinfo=timezone(timedelta(hours=-7)))) == "2026-11-28 14:03:07-0700"
    with pytest.raises(ValueError, match="timezone-aware"):
        vault_plugin.format_expiration(datetime(2026, 11, 28, 14, 3, 7))


def test_username_follows_the_default_template() -> None:
    name = vault_plugin.generate_username("kubernetes-api-service", "api-role", NOW)
    assert re.fullmatch(r"v-kubernet-api-role-[A-Za-z0-9]{20}-1732790000", name)
    long = vault_plugin.generate_username("kubernetes-x", "a-very-long-role-name", NOW)
    assert re.fullmatch(r"v-kubernet-a-very-l-[A-Za-z0-9]{20}-1732790000", long)
    longest = vault_plugin.generate_username("k" * 40, "r" * 40, NOW)
    assert re.fullmatch(r"v-kkkkkkkk-rrrrrrrr-[A-Za-z0-9]{20}-1732790000", longest)
    assert len(longest) == 51  # within PostgreSQL's 63 for any unix time of 10 digits


def test_password_follows_the_default_policy() -> None:
    for _ in range(50):
        password = vault_plugin.generate_password()
        assert re.fullmatch(r"[A-Za-z0-9-]{20}", password)
        assert all(re.search(pattern, password) for pattern in ("[a-z]", "[A-Z]", "[0-9]", "-"))
