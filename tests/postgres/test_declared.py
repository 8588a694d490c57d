"""The statements the tests run are the ones the program declares: the real program under the mock
engine sends exactly what the renderers in ``render.sql`` return."""

from __future__ import annotations

import pytest

from platformctl.core.declaration import unwrap
from render.sql import (
    ROOT_ROTATION_STATEMENTS,
    creation_statements,
    renew_statements,
    revocation_statements,
    static_rotation_statements,
)
from tests.support import ANY_STACK, STACKS, any_stack, declare_config, declare_stack, spec_of_config

ROLE = "vault:database/secretBackendRole:SecretBackendRole"
CONNECTION = "vault:database/secretBackendConnection:SecretBackendConnection"
STATIC_ROLE = "vault:database/secretBackendStaticRole:SecretBackendStaticRole"
STATIC = {"vault-platform:database.staticRoles": [
    {"name": "reporting", "connection": "postgres", "username": "reporting_user"}]}


@pytest.mark.parametrize("stack", ANY_STACK)
def test_declared_role_and_connection_statements_are_the_renderers(stack: str) -> None:
    spec = spec_of_config(any_stack(stack))
    declaration = declare_config(any_stack(stack))
    assert declaration.error is None
    assert spec.database is not None
    declared_roles = {
        r.inputs["name"]: tuple(unwrap(r.inputs[key]) for key in
                                ("creationStatements", "revocationStatements", "renewStatements"))
        for r in declaration.of_type(ROLE)
    }
    setup = {c.name: c.admin_setup for c in spec.database.connections}
    assert declared_roles == {
        role.name: (list(creation_statements(role, setup[role.connection])),
                    list(revocation_statements(setup[role.connection])),
                    list(renew_statements(setup[role.connection])))
        for role in spec.database.roles
    }
    declared_connections = {c.inputs["name"]: unwrap(c.inputs["rootRotationStatements"])
                            for c in declaration.of_type(CONNECTION)}
    assert declared_connections == {c.name: list(ROOT_ROTATION_STATEMENTS) for c in spec.database.connections}
    declared_static = {r.inputs["name"]: unwrap(r.inputs["rotationStatements"])
                       for r in declaration.of_type(STATIC_ROLE)}
    assert declared_static == {role.name: list(static_rotation_statements(setup[role.connection]))
                               for role in spec.database.static_roles}


@pytest.mark.parametrize(("stack", "setup"), [*((stack, "functions") for stack in STACKS), ("prod", "createrole")])
def test_declared_static_role_statements_are_the_renderer(stack: str, setup: str) -> None:
    declaration = declare_stack(stack, {**STATIC, "vault-platform:database.connections[0].adminSetup": setup})
    assert declaration.error is None
    assert {(r.inputs["name"], r.inputs["username"]): unwrap(r.inputs["rotationStatements"])
            for r in declaration.of_type(STATIC_ROLE)} == {
        ("reporting", "reporting_user"): list(static_rotation_statements(setup))}  # type: ignore[arg-type]
