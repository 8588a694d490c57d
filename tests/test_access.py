"""The access matrix (``platformctl access``): exact on the test stack ``access``
(tests/stacks/Pulumi.access.yaml), and properties that hold for any valid stack on the committed
stacks (each also with an application onboarded)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from environment import EnvironmentSpec, app_policy_name, app_policy_rules
from environment.policies import data_plane
from platformctl.__main__ import main
from platformctl.core.declaration import SECRET_SIG, SECRET_SIG_KEY, Declaration, DeclaredResource, access_of
from platformctl.core.plan import plan_document
from tests.support import ANY_STACK, any_stack, declare_stack, spec_of, spec_of_config
from vaultmodel import rules, vault_acl
from vaultmodel.access import (
    ACL_POLICY,
    KUBERNETES_ROLE,
    KV_SECRET,
    MOUNT,
    access_matrix,
    matrix_document,
    matrix_text,
    targets,
)

STACK = "access"
DEFAULT = "default"


def matrix_of(declaration: Declaration) -> dict[str, Any]:
    return matrix_document(access_of(declaration))


@pytest.fixture(scope="module")
def access_declared() -> Declaration:
    declaration = declare_stack(STACK)
    assert declaration.error is None
    return declaration


def reaches(entry: dict[str, Any]) -> list[tuple[str, str, str, list[str]]]:
    return [(r["kind"], r["name"], r["path"], r["capabilities"]) for r in entry["reaches"]]


class TestTestStack:
    def test_identities(self, access_declared: Declaration) -> None:
        matrix = matrix_of(access_declared)
        assert [(i["subject"], i["via"], i["policies"], i["unknownPolicies"]) for i in matrix["identities"]] == [
            ("payments/payments-sa", "auth/kubernetes/role/payments", ["app-payments", "payments-readers", DEFAULT],
             []),
            ("production/api-service-sa", "auth/kubernetes/role/api-service",
             ["app-api-service", "api-secrets", DEFAULT], []),
            # the snapshot job's role sets token_no_default_policy
            ("vault/vault-snapshot", "auth/kubernetes/role/vault-snapshot", ["vault-snapshot"], []),
        ]
        assert [p["subject"] for p in matrix["platformPolicies"]] == [
            "policy platform-admin", "policy vault-iac", "policy vault-snapshot", "policy operations-readonly",
            "policy vault-preview"]

    def test_what_each_app_reaches(self, access_declared: Declaration) -> None:
        payments, api, snapshot = matrix_of(access_declared)["identities"]
        assert reaches(payments) == [
            ("KV secret", "production/payments", "secret/data/production/payments", ["read"]),
            ("KV secret", "production/payments", "secret/metadata/production/payments", ["read"]),
            # payments-readers' glob secret/data/production/pay* reaches payouts too: the report shows it
            ("KV secret", "production/payouts", "secret/data/production/payouts", ["read"]),
            ("PKI role", "payments-api", "pki_int/issue/payments-api", ["update"]),
            ("static database role", "reporting", "database/static-creds/reporting", ["read"]),
            ("transit key", "payments-card-data", "transit/decrypt/payments-card-data", ["update"]),
            ("transit key", "payments-card-data", "transit/encrypt/payments-card-data", ["update"]),
        ]
        assert reaches(api) == [
            ("KV secret", "production/api-service", "secret/data/production/api-service", ["read"]),
            ("database role", "api-role", "database/creds/api-role", ["read"]),
        ]
        assert reaches(snapshot) == []
        assert snapshot["grants"] == [
            {"policy": "vault-snapshot", "path": "auth/token/revoke-self", "capabilities": ["update"]},
            {"policy": "vault-snapshot", "path": "sys/storage/raft/snapshot", "capabilities": ["read"]}]
        assert api["grants"] == [
            {"policy": "api-secrets", "path": "secret/data/production/api-service", "capabilities": ["read"]},
            {"policy": "app-api-service", "path": "database/creds/api-role", "capabilities": ["read"]},
            {"policy": "app-api-service", "path": "secret/data/production/api-service", "capabilities": ["read"]},
        ]

    def test_platform_policies_reach(self, access_declared: Declaration) -> None:
        admin, iac, snapshot, operations, preview = matrix_of(access_declared)["platformPolicies"]
        everything = ["create", "read", "update", "patch", "delete", "list"]
        assert ("KV secret", "production/payouts", "secret/destroy/production/payouts", everything) in reaches(admin)
        assert ("PKI role", "payments-api", "pki_int/issue/payments-api", [*everything, "sudo"]) in reaches(admin)
        assert len(reaches(admin)) == 3 * 5 + 2 + 3 + 2 * 13 + 3  # every path of every declared target
        # The IaC manages keys and roles but never uses them: no credentials, no encryption, no issuing.
        assert {path for _, _, path, _ in reaches(iac)} >= {"transit/keys/payments-card-data",
                                                            "secret/data/production/api-service"}
        assert [path for _, _, path, _ in reaches(iac)
                if "/creds/" in path or "/encrypt/" in path or "/issue/" in path] == []
        assert reaches(snapshot) == []
        # The read-only ones never write or use anything declared.
        assert {c for _, _, _, caps in reaches(operations) + reaches(preview) for c in caps} <= {"read", "list"}

    def test_jwt_roles_and_identity_groups(self, declared: dict[str, Declaration]) -> None:
        # CI's roles (JWT, bound by claims) and people's groups (OIDC) are identities too.
        declaration = declared["prod"]
        matrix = {entry["subject"]: entry for entry in matrix_of(declaration)["identities"]}
        for role in declaration.of_type("vault:jwt/authBackendRole:AuthBackendRole"):
            entry = matrix[f"{role.inputs['backend']}/{role.inputs['roleName']}"]
            assert entry["via"].startswith(f"auth/{role.inputs['backend']}/role/{role.inputs['roleName']}")
            assert entry["policies"][:-1] == list(role.inputs["tokenPolicies"])
            for claim, value in (role.inputs.get("boundClaims") or {}).items():
                assert f"{claim}={value}" in entry["via"]
        groups = declaration.of_type("vault:identity/group:Group")
        assert groups
        for group in groups:
            entry = matrix[f"group {group.inputs['name']}"]
            assert entry["policies"] == [*group.inputs["policies"], DEFAULT]

    def test_a_deny_in_a_declared_policy_takes_effect(self) -> None:
        # A deny on payouts beside the glob: the payments app no longer reaches payouts.
        declaration = declare_stack(STACK, {"vault-platform:policies[1].rules[2]": {
            "path": "secret/data/production/payouts", "capabilities": ["deny"]}})
        payments = matrix_of(declaration)["identities"][0]
        assert "secret/data/production/payouts" not in [path for _, _, path, _ in reaches(payments)]

    def test_text(self, access_declared: Declaration) -> None:
        text = matrix_text(access_matrix([(r.type, r.inputs) for r in access_declared.resources]), STACK)
        assert "\nproduction/api-service-sa\n  through auth/kubernetes/role/api-service: policies " \
               "app-api-service, api-secrets, default\n  reaches:\n" \
               "    KV secret production/api-service  read on secret/data/production/api-service\n" \
               "    database role api-role            read on database/creds/api-role\n" in text
        assert "\npolicy vault-snapshot\n  reaches: nothing the stack declares\n  rules:\n" \
               "    vault-snapshot: update on auth/token/revoke-self\n" \
               "    vault-snapshot: read on sys/storage/raft/snapshot\n" in text

    def test_cluster_only(self) -> None:
        text = matrix_text(access_matrix([]), STACK)
        assert text.endswith("No Vault identity or policy is declared (cluster only).\n")


def expected_reach(spec: EnvironmentSpec, app_name: str, declaration: Declaration) -> set[str]:
    """The paths an app should reach: its generated policy's and what its declared policies match."""
    app = next(a for a in spec.apps if a.name == app_name)
    paths = {path for target in targets([(r.type, r.inputs) for r in declaration.resources]) for path in target.paths}
    reached = {rule.path for rule in app_policy_rules(app, spec)}
    for policy in spec.policies:
        if policy.name in app.policies:
            reached |= {path for rule in policy.rules if "deny" not in rule.capabilities for path in paths
                        if vault_acl.matches(rule.path, path)}
    return reached


class TestAnyStack:
    @pytest.mark.parametrize("stack", ANY_STACK)
    def test_every_app_reaches_exactly_what_its_spec_declares(self, any_declared: dict[str, Declaration],
                                                                stack: str) -> None:
        spec = spec_of_config(any_stack(stack))
        matrix = matrix_of(any_declared[stack])
        by_subject = {entry["subject"]: entry for entry in matrix["identities"]}
        for app in spec.apps:
            entry = by_subject[f"{app.namespace}/{app.service_account}"]
            assert app_policy_name(app) in entry["policies"]
            assert {r["path"] for r in entry["reaches"]} == expected_reach(spec, app.name, any_declared[stack])

    @pytest.mark.parametrize("stack", ANY_STACK)
    def test_no_app_reaches_beyond_the_data_plane(self, any_declared: dict[str, Declaration], stack: str) -> None:
        spec = spec_of_config(any_stack(stack))
        plane = data_plane(spec.kv, spec.database, spec.transit, spec.pki)
        apps = {f"{app.namespace}/{app.service_account}" for app in spec.apps}
        for entry in matrix_of(any_declared[stack])["identities"]:
            if entry["subject"] in apps:
                for reach in entry["reaches"]:
                    assert rules.data_plane_refusal("reach", reach["path"], reach["capabilities"], plane) is None

    @pytest.mark.parametrize("stack", ANY_STACK)
    def test_the_platform_policies_are_reported(self, any_declared: dict[str, Declaration], stack: str) -> None:
        subjects = [entry["subject"] for entry in matrix_of(any_declared[stack])["platformPolicies"]]
        assert subjects[:2] == ["policy platform-admin", "policy vault-iac"]


class TestCommand:
    def test_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["access", "prod", "--json"]) == 0
        document = json.loads(capsys.readouterr().out)
        assert document["stack"] == "prod"
        spec = spec_of_config(any_stack("prod"))
        assert {f"{a.namespace}/{a.service_account}" for a in spec.apps} <= {
            i["subject"] for i in document["identities"]}

    def test_text(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["access", "prod"]) == 0
        assert capsys.readouterr().out.startswith("Access of stack 'prod': ")

    def test_unknown_stack(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["access", "nope"]) == 2
        assert "no stack 'nope'" in capsys.readouterr().err


def test_spec_and_matrix_agree_on_the_test_stack(access_declared: Declaration) -> None:
    spec = spec_of(STACK)
    subjects = [entry["subject"] for entry in matrix_of(access_declared)["identities"]]
    assert {f"{a.namespace}/{a.service_account}" for a in spec.apps} == set(subjects[:2])


def test_the_matrix_is_read_as_the_diff_reads_it_and_no_secret_reaches_it() -> None:
    """``access_of`` (``platformctl access``, ``plan --app``) takes the inputs as the plan document the pull
    request's diff computes its access changes from holds them: secrets masked. A policy whose text is a
    secret then grants nothing, as in the diff, rather than what the secret says."""
    def resource(type_token: str, name: str, inputs: dict[str, Any]) -> DeclaredResource:
        return DeclaredResource(type_token, name, f"urn:{name}", inputs, True, "", "", False)

    hidden = 'path "secret/data/dev/x" { capabilities = ["read"] }'
    declaration = Declaration("dev", (
        resource(MOUNT, "kv", {"path": "secret", "type": "kv-v2"}),
        resource(KV_SECRET, "x", {"mount": "secret", "name": "dev/x"}),
        resource(ACL_POLICY, "p", {"name": "p", "policy": {SECRET_SIG_KEY: SECRET_SIG, "value": hidden}}),
        resource(KUBERNETES_ROLE, "r", {"backend": "kubernetes", "roleName": "r", "tokenPolicies": ["p"],
                                        "boundServiceAccountNamespaces": ["n"], "boundServiceAccountNames": ["a"],
                                        "tokenNoDefaultPolicy": True}),
    ), {}, (), None)
    matrix = access_of(declaration)
    assert matrix == access_matrix([(r["type"], r["inputs"]) for r in plan_document(declaration)["resources"].values()])
    assert [(i.subject, i.policies, i.grants, i.reaches) for i in matrix.identities] == [("n/a", ("p",), (), ())]
