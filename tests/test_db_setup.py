"""``platformctl db-setup``: the complete script per connection, and with ``--since`` exactly what a
stack change needs (what the SQL does on PostgreSQL: tests/postgres/test_db_setup_psql.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from environment import Database
from platformctl.__main__ import main
from platformctl.adapters.stackfile import stack_file
from platformctl.commands.db_setup_command import base_spec
from platformctl.core.db_setup import changed_scripts, full_scripts, render
from render.admin_setup import ConnectionNeeds, setup_statements
from tests.support import COMMITTED, STACKS, any_stack, spec_of, spec_of_config

P = "vault-platform:database"
STATIC = {f"{P}.staticRoles": [{"name": "reporting", "connection": "postgres", "username": "reporting_user"}]}


def database(stack: str = "prod", changes: dict[str, Any] | None = None) -> Database:
    spec = spec_of(stack, changes)
    assert spec.database is not None
    return spec.database


@pytest.mark.parametrize("stack", STACKS)
def test_full_script_is_each_connections_setup(stack: str) -> None:
    db = database(stack)
    assert [(s.connection.name, s.statements, s.whole) for s in full_scripts(db)] == [
        (c.name, setup_statements(ConnectionNeeds.of(c, db.roles, db.static_roles)), True) for c in db.connections]


def test_dev_in_cluster_tables_belong_to_its_bootstrap_superuser() -> None:
    """What the in-cluster instance runs (components/dev_postgres.py) and what db-setup prints for it."""
    [script] = full_scripts(database("dev"))
    assert script.connection.in_cluster
    assert [s for s in script.statements if s.startswith("ALTER DEFAULT PRIVILEGES")] == [
        'ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "public" GRANT SELECT, INSERT, UPDATE ON TABLES TO '
        '"vault_api_owner" WITH GRANT OPTION;',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "public" GRANT USAGE ON SEQUENCES TO '
        '"vault_api_owner" WITH GRANT OPTION;']
    assert "-- The in-cluster PostgreSQL runs this itself when its pod starts; shown for reference." in render(
        "dev", [script])


def test_no_change_needs_nothing() -> None:
    [script] = changed_scripts(database(), database())
    assert (script.statements, script.later, script.whole) == ((), (), False)
    assert render("prod", [script], "origin/main").splitlines() == [
        "-- prod, connection 'postgres': postgres.prod.internal:5432, database app, admin vault_admin "
        "(functions setup); changes since origin/main.", "-- Nothing to apply."]


def test_a_new_schema_needs_its_grants_only() -> None:
    head = database(changes={f"{P}.roles[0].grants[1]": {"privileges": ["SELECT"], "schema": "billing"}})
    [script] = changed_scripts(database(), head)
    assert script.statements == (
        'GRANT USAGE ON SCHEMA "billing" TO "vault_api_owner" WITH GRANT OPTION;',
        'GRANT SELECT ON ALL TABLES IN SCHEMA "billing" TO "vault_api_owner" WITH GRANT OPTION;',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "app_owner" IN SCHEMA "billing" GRANT SELECT ON TABLES TO '
        '"vault_api_owner" WITH GRANT OPTION;',
        "INSERT INTO vault_api.grantable (schema_name, privilege) VALUES ('billing', 'SELECT') ON CONFLICT DO NOTHING;",
    )


def test_a_dropped_privilege_stops_new_grants_now_and_its_grant_option_later() -> None:
    head = database(changes={f"{P}.roles[0].grants[0].privileges": ["SELECT", "UPDATE"]})
    [script] = changed_scripts(database(), head)
    assert script.statements == (
        "DELETE FROM vault_api.grantable WHERE schema_name = 'public' AND privilege = 'INSERT';",)
    assert script.later == (
        'ALTER DEFAULT PRIVILEGES FOR ROLE "app_owner" IN SCHEMA "public" REVOKE GRANT OPTION FOR INSERT ON TABLES '
        'FROM "vault_api_owner";',
        'REVOKE GRANT OPTION FOR INSERT ON ALL TABLES IN SCHEMA "public" FROM "vault_api_owner";',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "app_owner" IN SCHEMA "public" REVOKE GRANT OPTION FOR USAGE ON SEQUENCES '
        'FROM "vault_api_owner";',
        'REVOKE GRANT OPTION FOR USAGE ON ALL SEQUENCES IN SCHEMA "public" FROM "vault_api_owner";',
    )
    assert "-- REVOKE GRANT OPTION FOR INSERT ON ALL TABLES" in render("prod", [script], "main")


def test_static_users_are_added_and_removed() -> None:
    [added] = changed_scripts(database(), database(changes=STATIC))
    assert added.statements[0] == (
        "INSERT INTO vault_api.static_user (username) VALUES ('reporting_user') ON CONFLICT DO NOTHING;")
    assert "WITH ADMIN TRUE, INHERIT FALSE, SET FALSE" in added.statements[1]
    [removed] = changed_scripts(database(changes=STATIC), database())
    assert removed.statements == ("DELETE FROM vault_api.static_user WHERE username = 'reporting_user';",)


@pytest.mark.parametrize("change", [
    {f"{P}.connections[0].adminSetup": "createrole"},
    {f"{P}.connections[0].adminUser": "vault_admin_2"},
    {f"{P}.connections[0].database": "billing"},
])
def test_another_admin_setup_or_database_needs_the_whole_script(change: dict[str, Any]) -> None:
    head = database(changes=change)
    [script] = changed_scripts(database(), head)
    assert script.whole
    assert script.statements == full_scripts(head)[0].statements


def test_a_connection_no_longer_declared_is_named() -> None:
    second = {"name": "reports", "host": "reports.prod.internal", "database": "reports", "adminUser": "vault_reports",
              "adminPassword": {"fromSecret": "postgresAdminPassword"}}
    base = database(changes={f"{P}.connections[1]": second})
    scripts = changed_scripts(base, database())
    assert [(s.connection.name, s.statements, s.removed) for s in scripts] == [
        ("postgres", (), False), ("reports", (), True)]
    assert render("prod", scripts, "main").splitlines()[3:] == [
        "-- prod, connection 'reports' (reports.prod.internal:5432, database reports) is no longer declared since "
        "main: once the stack is applied Vault stops using it; its admin vault_reports and its setup can then be "
        "dropped by hand."]


def test_a_stack_without_a_base_needs_everything() -> None:
    assert changed_scripts(None, database()) == full_scripts(database())


def test_base_is_read_from_the_stack_file_at_the_ref(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    committed = stack_file("prod").read_text()
    stack_file("prod", tmp_path).write_text(committed.replace("schema: public", "schema: billing"))
    for command in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@example.com",
                                                    "commit", "-q", "-m", "base"]):
        subprocess.run(["git", *command], cwd=tmp_path, check=True, capture_output=True)
    base = base_spec("prod", "HEAD", tmp_path)
    assert base is not None
    assert base.database is not None
    assert [g.schema for g in base.database.roles[0].grants] == ["billing"]
    assert base_spec("staging", "HEAD", tmp_path) is None  # no such stack then: everything is new
    with pytest.raises(RuntimeError, match="'no-such-ref' is not a commit of this repository"):
        base_spec("prod", "no-such-ref", tmp_path)


@pytest.mark.parametrize("stack", COMMITTED)
def test_command_prints_the_complete_script(capsys: pytest.CaptureFixture[str], stack: str) -> None:
    # The command reads the committed stack, whatever it declares this week.
    committed = spec_of_config(any_stack(stack)).database
    assert main(["db-setup", stack]) == 0
    assert capsys.readouterr().out == (render(stack, full_scripts(committed)) if committed else
                                       f"-- {stack}: no database connections; nothing to set up\n")


def test_command_refuses_an_unknown_ref_or_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db-setup", "prod", "--since", "no-such-ref"]) == 2
    assert capsys.readouterr().err == "error: 'no-such-ref' is not a commit of this repository\n"
    assert main(["db-setup", "qa"]) == 2
    assert capsys.readouterr().err.startswith("error: no stack 'qa'")
