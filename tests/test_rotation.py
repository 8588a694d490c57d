"""Rotation: Vault owns the database admin password after set-up, and no later run sends the old
one again; static roles rotate on their period and applications read them."""

from __future__ import annotations

from typing import Any

import pytest

from environment import PolicyRule, app_policy_rules
from platformctl.adapters.engine import GENERATED
from platformctl.adapters.stackfile import PLACEHOLDER
from platformctl.core.declaration import Declaration, is_secret, unwrap
from platformctl.core.plan import plan_text
from render.annotations import injector_annotations
from tests.support import API_SERVICE, declare_stack, edited, refusal, spec_of

CONNECTION = "vault:database/secretBackendConnection:SecretBackendConnection"
ENDPOINT = "vault:generic/endpoint:Endpoint"
CONN = "vault-platform:database.connections[0]"
STATIC = {"vault-platform:database.staticRoles": [{"name": "reporting", "connection": "postgres",
                                                   "username": "reporting", "rotationPeriod": "24h"}]}


def postgresql(declaration: Declaration) -> dict[str, Any]:
    (connection,) = declaration.of_type(CONNECTION)
    block = connection.inputs["postgresql"]
    # The password is a secret where it stands; the settings beside it stay readable in the plan.
    assert is_secret(block["passwordWo"])
    assert not is_secret(block["connectionUrl"])
    return dict(unwrap(block))


def rotations(declaration: Declaration) -> dict[str, dict[str, Any]]:
    return {r.name: dict(unwrap(r.inputs)) for r in declaration.of_type(ENDPOINT)}


class TestRootCredentials:
    def test_the_password_is_sent_write_only_with_its_version(self, declared: dict[str, Declaration]) -> None:
        block = postgresql(declared["prod"])
        assert "password" not in block
        assert (block["passwordWo"], block["passwordWoVersion"]) == (PLACEHOLDER, 1)

    def test_vault_rotates_it_once_the_connection_is_set_up(self, declared: dict[str, Declaration]) -> None:
        assert rotations(declared["prod"]) == {"vault-database-postgres-rotate-root-v1": {
            "path": "database/rotate-root/postgres", "dataJson": "{}", "disableRead": True, "disableDelete": True}}

    def test_two_runs_of_the_same_spec_send_the_same_inputs(self) -> None:
        first, second = declare_stack("prod"), declare_stack("prod")
        assert postgresql(first) == postgresql(second)
        # Same names and inputs on the second run: Pulumi finds nothing to update, so no password is
        # sent and the rotation resource is not written again.
        assert rotations(first) == rotations(second)

    def test_a_change_elsewhere_on_the_connection_keeps_the_password_version(self) -> None:
        # The provider sends password_wo only when password_wo_version changes; the rest of the
        # connection is updated without it.
        before = declare_stack("prod")
        after = declare_stack("prod", {"vault-platform:database.roles[0].name": "api-role-v2",
                                       f"{API_SERVICE}databaseRole": "api-role-v2"})
        (connection,) = after.of_type(CONNECTION)
        assert connection.inputs["allowedRoles"] == ["api-role-v2"]  # the connection is updated ...
        assert postgresql(after)["passwordWoVersion"] == postgresql(before)["passwordWoVersion"] == 1
        assert "password" not in postgresql(after)
        assert set(rotations(after)) == set(rotations(before))  # ... and nothing is rotated again

    def test_only_a_new_version_sends_a_new_password_and_rotates_it_again(self) -> None:
        declaration = declare_stack("prod", {f"{CONN}.adminPasswordVersion": 2})
        assert postgresql(declaration)["passwordWoVersion"] == 2
        assert set(rotations(declaration)) == {"vault-database-postgres-rotate-root-v2"}

    def test_dev_keeps_the_generated_password(self, declared: dict[str, Declaration]) -> None:
        block = postgresql(declared["dev"])
        assert (block["passwordWo"], block["passwordWoVersion"]) == (GENERATED, 1)
        assert rotations(declared["dev"]) == {}

    def test_the_plan_shows_the_rotation(self, declared: dict[str, Declaration]) -> None:
        text = plan_text(declared["prod"], edited("prod"))
        assert "+ vault:generic/endpoint:Endpoint  vault-database-postgres-rotate-root-v1" in text
        assert "path: database/rotate-root/postgres" in text


class TestStaticRoles:
    def test_an_app_reads_its_static_credentials(self) -> None:
        spec = spec_of("prod", {**STATIC, f"{API_SERVICE}staticDatabaseRole": "reporting"})
        assert PolicyRule("database/static-creds/reporting", ("read",)) in app_policy_rules(spec.apps[0], spec)
        annotations = injector_annotations(spec.apps[0], spec)
        assert annotations["vault.hashicorp.com/agent-inject-secret-db-static-creds.env"] == (
            "database/static-creds/reporting")
        assert annotations["vault.hashicorp.com/agent-inject-template-db-static-creds.env"] == (
            '{{- with secret "database/static-creds/reporting" -}}\n'
            "PGHOST=postgres.prod.internal\nPGPORT=5432\nPGDATABASE=app\n"
            "PGUSER={{ .Data.username }}\nPGPASSWORD={{ .Data.password }}\n"
            "{{- end }}\n")

    def test_the_static_role_rotates_on_its_period(self) -> None:
        declaration = declare_stack("prod", STATIC)
        role = declaration.named("vault-database-reporting")
        assert (role.inputs["username"], role.inputs["rotationPeriod"]) == ("reporting", 86400)


@pytest.mark.parametrize(("stack", "changes", "key", "problem"), [
    ("prod", {f"{CONN}.rotateRoot": False}, "database.connections[0].rotateRoot",
     "only Vault may know the admin password"),
    ("staging", {f"{CONN}.rotateRoot": False}, "database.connections[0].rotateRoot", "in staging"),
    ("dev", {f"{CONN}.rotateRoot": True}, "database.connections[0].rotateRoot", "resets the admin password"),
    ("prod", {f"{CONN}.adminPasswordVersion": 0}, "database.connections[0].adminPasswordVersion",
     "below the minimum of 1"),
    ("prod", {f"{CONN}.adminPasswordVersion": "2"}, "database.connections[0].adminPasswordVersion",
     "expected a whole number"),
    ("prod", {f"{API_SERVICE}staticDatabaseRole": "reporting"}, f"{API_SERVICE}staticDatabaseRole",
     "static database role 'reporting' is not declared"),
    ("prod", {**STATIC, f"{API_SERVICE}staticDatabaseRole": "api-role"}, f"{API_SERVICE}staticDatabaseRole",
     "declared: reporting"),
])
def test_refused(stack: str, changes: dict[str, Any], key: str, problem: str) -> None:
    assert problem in str(refusal(stack, changes, key if key.startswith("apps/") else f"vault-platform:{key}"))
