"""A quote or a semicolon in any stack value that ends up in SQL is refused by the spec, naming the
config key, before any statement exists. No server needed."""

from __future__ import annotations

from typing import Any

import pytest

from render.admin_setup import grant_statements
from render.sql import creation_statements
from tests.support import refusal, spec_of

DB = "vault-platform:database"
STATIC_ROLE = {"name": "reporting", "connection": "postgres", "username": "reporting_user"}
RULE = ("use lowercase letters, digits and '_', starting with a letter or '_' (a plain PostgreSQL "
        "identifier), at most 63 characters")
NAME_RULE = ("use lowercase letters, digits, '-' and '_', starting and ending with a letter or digit, "
             "at most 128 characters")

HOSTILE: list[tuple[dict[str, Any], str, str, str]] = [
    ({f"{DB}.roles[0].grants[0].schema": "public; DROP TABLE x"}, f"{DB}.roles[0].grants[0].schema",
     "'public; DROP TABLE x' is not a valid name", RULE),
    ({f"{DB}.roles[0].grants[0].schema": 'public"; DROP TABLE x; --'}, f"{DB}.roles[0].grants[0].schema",
     "'public\"; DROP TABLE x; --' is not a valid name", RULE),
    ({f"{DB}.roles[0].grants[0].privileges[0]": "SELECT; DROP TABLE x"},
     f"{DB}.roles[0].grants[0].privileges[0]", "'SELECT; DROP TABLE X' is not a table privilege",
     "use some of SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"),
    ({f"{DB}.roles[0].grants[0].privileges[1]": "INSERT'"}, f"{DB}.roles[0].grants[0].privileges[1]",
     "\"INSERT'\" is not a table privilege",
     "use some of SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"),
    ({f"{DB}.roles[0].name": "api'role"}, f"{DB}.roles[0].name", "\"api'role\" is not a valid name", NAME_RULE),
    ({f"{DB}.roles[0].name": "api;role"}, f"{DB}.roles[0].name", "'api;role' is not a valid name", NAME_RULE),
    ({f"{DB}.connections[0].adminUser": "vault_admin'; DROP ROLE x; --"}, f"{DB}.connections[0].adminUser",
     "\"vault_admin'; DROP ROLE x; --\" is not a valid name", RULE),
    ({f"{DB}.connections[0].adminUser": 'vault"admin'}, f"{DB}.connections[0].adminUser",
     "'vault\"admin' is not a valid name", RULE),
    ({f"{DB}.connections[0].database": "app;"}, f"{DB}.connections[0].database", "'app;' is not a valid name",
     RULE),
    ({f"{DB}.staticRoles": [{**STATIC_ROLE, "username": "reporting'; DROP ROLE x"}]},
     f"{DB}.staticRoles[0].username", "\"reporting'; DROP ROLE x\" is not a valid name", RULE),
    ({f"{DB}.staticRoles": [{**STATIC_ROLE, "username": 'reporting";'}]},
     f"{DB}.staticRoles[0].username", "'reporting\";' is not a valid name", RULE),
]


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
@pytest.mark.parametrize(("changes", "key", "problem", "fix"), HOSTILE, ids=[h[1].split(":")[1] + "=" + str(
    next(iter(h[0].values()))) for h in HOSTILE])
def test_hostile_value_is_refused_naming_the_key(stack: str, changes: dict[str, Any], key: str, problem: str,
                                                 fix: str) -> None:
    refused = refusal(stack, changes, key)
    assert (refused.problem, refused.fix) == (problem, fix)
    assert str(refused) == f"stack {stack!r}, config key {refused.key!r}: {problem}. Fix: {fix}"


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_plain_identifiers_are_accepted_and_quoted(stack: str) -> None:
    spec = spec_of(stack, {f"{DB}.roles[0].grants[0].schema": "billing_2",
                           f"{DB}.staticRoles": [STATIC_ROLE]})
    assert spec.database is not None
    role = spec.database.roles[0]
    assert creation_statements(role, "createrole")[1:] == (
        'GRANT USAGE ON SCHEMA "billing_2" TO "{{name}}";',
        'GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA "billing_2" TO "{{name}}";',
        'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "billing_2" TO "{{name}}";',
    )
    assert creation_statements(role, "functions") == (
        "SELECT vault_api.create_user('{{name}}', '{{password}}', '{{expiration}}', "
        """'[{"schema":"billing_2","privileges":["SELECT","INSERT","UPDATE"]}]');""",)
    assert grant_statements(spec.database.connections[0], "billing_2", ("SELECT",))[0] == (
        'GRANT USAGE ON SCHEMA "billing_2" TO "vault_api_owner" WITH GRANT OPTION;')
    assert [s.username for s in spec.database.static_roles] == ["reporting_user"]
