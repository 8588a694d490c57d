"""ACL policies reach only the data plane of what the stack declares: each rule refused or accepted
by the spec (before anything is declared) and by the guardrails pack (on what a preview sends),
through the one implementation in ``vaultmodel.rules``. Exact cases run on the test
stack ``access`` (tests/stacks/Pulumi.access.yaml: kv secrets production/api-service, payments,
payouts; database role api-role and static role reporting; transit keys payments-card-data,
payments-receipts; PKI role payments-api on pki_int), whose ``payments-readers`` policy each case replaces."""

from __future__ import annotations

import dataclasses

import pytest

from environment import SpecError, load_policy_files
from environment.operations import SNAPSHOT_IDENTITY
from platformctl.core.declaration import Declaration
from tests.guardrails.harness import reported, run_pack, stack_args
from tests.support import declare_stack, spec_of
from vaultmodel import rules
from vaultmodel.vault_acl import PathRule

STACK = "access"
P = "vault-platform:"
TAGS = {"owner": "platform-team", "environment": "prod"}
POLICY = "payments-readers"
RULE_KEY = f"{P}policies[1].rules"

ACCEPTED = [
    ("secret/data/production/api-service", ["read"]),
    ("secret/metadata/production/payments", ["read"]),  # metadata where the policy asks for it
    ("secret/data/production/pay*", ["read"]),  # a glob narrower than the environment
    ("secret/data/production/payouts", ["delete"]),  # one declared secret
    ("secret/destroy/production/payouts", ["update"]),
    ("secret/metadata/production/payouts", ["read", "delete"]),
    ("secret/data/production/payouts", ["deny"]),  # a deny never widens access
    ("database/creds/api-role", ["read"]),
    ("database/static-creds/reporting", ["read"]),
    ("transit/encrypt/payments-card-data", ["update"]),
    ("transit/sign/payments-receipts", ["create", "update"]),
    ("transit/datakey/plaintext/payments-card-data", ["update"]),
    ("pki_int/issue/payments-api", ["create", "update"]),
    ("pki_int/sign/payments-api", ["update"]),
]

REFUSED = {
    "policy writing": ("sys/policies/acl/ops", ["update"], "policy writing is never an application's"),
    "sys": ("sys/mounts/secret", ["read"], "Vault's control plane (sys/)"),
    "auth role": ("auth/kubernetes/role/payments", ["update"], "Vault's control plane (auth/)"),
    "token creation": ("auth/token/create", ["update"], "token creation is never an application's"),
    "identity": ("identity/entity/name/payments", ["read"], "Vault's control plane (identity/)"),
    "sign intermediate": ("pki/root/sign-intermediate", ["update"], "PKI CA operations"),
    "generate intermediate": ("pki_int/intermediate/generate/internal", ["update"], "PKI CA operations"),
    "sign-verbatim": ("pki_int/sign-verbatim/payments-api", ["update"], "PKI CA operations"),
    "root generation": ("pki/root/generate/internal", ["update"], "PKI CA operations"),
    "CA config": ("pki_int/config/urls", ["update"], "PKI CA operations"),
    "PKI role config": ("pki_int/roles/payments-api", ["update"], "PKI CA operations"),
    "destroy through a glob": ("secret/destroy/production/pay*", ["update"], "single declared secret only"),
    "delete through a glob": ("secret/data/production/pay*", ["delete"], "single declared secret only"),
    "metadata-delete through a glob": ("secret/metadata/production/pay*", ["delete"], "single declared secret"),
    "KV write": ("secret/data/production/api-service", ["create", "update"], "writing secrets is the IaC's"),
    "KV config": ("secret/config", ["update"], "KV mount configuration"),
    "transit key config": ("transit/keys/payments-card-data/config", ["update"], "transit key configuration"),
    "transit rotation": ("transit/keys/payments-card-data/rotate", ["update"], "transit key configuration"),
    "transit deletion": ("transit/keys/payments-card-data", ["delete"], "transit key configuration"),
    "transit export": ("transit/export/encryption-key/payments-card-data", ["read"], "export and backup"),
    "environment glob": ("secret/data/production/*", ["read"], "glob over the environment's path prefix"),
    "cut into the environment": ("secret/data/prod*", ["read"], "glob over the environment's path prefix"),
    "any environment": ("secret/data/+/api-service", ["read"], "glob over the environment's path prefix"),
    "whole KV mount": ("secret/*", ["read"], "a whole mount or all of its secret material"),
    "every credential": ("database/creds/*", ["read"], "a whole mount or all of its secret material"),
    "database config": ("database/roles/api-role", ["update"], "database configuration"),
    "creds written": ("database/creds/api-role", ["update"], "['update'] is more than using a database role"),
    "undeclared secret": ("secret/data/production/billing", ["read"], "'production/billing'"),
    "undeclared key": ("transit/encrypt/billing", ["update"], "transit key 'billing'"),
    "undeclared mount": ("aws/creds/deploy", ["read"], "'aws' is not a mount this stack declares"),
    "cubbyhole": ("cubbyhole/notes", ["read"], "'cubbyhole' is not a mount this stack declares"),
}


@pytest.fixture(scope="module")
def access_stack() -> Declaration:
    declaration = declare_stack(STACK)
    assert declaration.error is None
    return declaration


def with_policy(declaration: Declaration, text: str) -> Declaration:
    """``declaration`` with the payments-readers policy's text replaced (past the spec)."""
    resources = tuple(dataclasses.replace(r, inputs={**r.inputs, "policy": text})
                      if r.name == f"vault-policies-{POLICY}" else r for r in declaration.resources)
    return dataclasses.replace(declaration, resources=resources)


def hcl(path: str, capabilities: list[str]) -> str:
    return f'path "{path}" {{\n  capabilities = {capabilities}\n}}\n'.replace("'", '"')


class TestSpec:
    @pytest.mark.parametrize(("path", "capabilities"), ACCEPTED)
    def test_accepted(self, path: str, capabilities: list[str]) -> None:
        spec = spec_of(STACK, {RULE_KEY: [{"path": path, "capabilities": capabilities}]})
        assert next(p.rules for p in spec.policies if p.name == POLICY)[0].path == path

    @pytest.mark.parametrize(("path", "capabilities", "words"), REFUSED.values(), ids=REFUSED.keys())
    def test_refused_naming_the_policy_the_rule_and_the_fix(self, path: str, capabilities: list[str],
                                                             words: str) -> None:
        with pytest.raises(SpecError) as refused:
            spec_of(STACK, {RULE_KEY: [{"path": path, "capabilities": capabilities}]})
        error = refused.value
        assert error.key == f"{P}policies[{POLICY}].rules[{path}].path"
        assert words in error.problem
        assert error.fix

    def test_default_service_account_is_refused(self) -> None:
        with pytest.raises(SpecError) as refused:
            spec_of(STACK, {"apps/payments/payments.yaml:serviceAccount": "default"})
        assert refused.value.key == "apps/payments/payments.yaml:serviceAccount"
        assert "'default' service account" in refused.value.problem
        assert "create a service account for the application" in refused.value.fix


class TestPack:
    def test_the_test_stack_passes_the_whole_pack(self, access_stack: Declaration) -> None:
        assert run_pack(access_stack, TAGS) == []

    @pytest.mark.parametrize(("path", "capabilities"), ACCEPTED)
    def test_accepted(self, access_stack: Declaration, path: str, capabilities: list[str]) -> None:
        args = stack_args(with_policy(access_stack, hcl(path, capabilities)), TAGS)
        assert reported("acl-least-privilege", args) == []

    @pytest.mark.parametrize(("path", "capabilities", "words"), REFUSED.values(), ids=REFUSED.keys())
    def test_refused_naming_the_policy_the_rule_and_the_fix(self, access_stack: Declaration, path: str,
                                                             capabilities: list[str], words: str) -> None:
        args = stack_args(with_policy(access_stack, hcl(path, capabilities)), TAGS)
        [message] = reported("acl-least-privilege", args)
        assert message.startswith(f"policy {POLICY!r} grants {capabilities} on {path!r}: ")
        assert words in message
        assert "; fix: " in message

    def test_admin_policies_are_reported_not_refused(self, access_stack: Declaration) -> None:
        args = stack_args(access_stack, TAGS)
        assert reported("acl-least-privilege", args) == []
        admin = [r for r in access_stack.resources if r.name == "vault-policies-platform-admin"]
        assert admin
        assert "sys/*" in str(admin[0].inputs["policy"])
        strict = stack_args(access_stack, TAGS, config={"adminPolicies": []})
        refused = reported("acl-least-privilege", strict)
        assert any(m.startswith("policy 'platform-admin' grants") for m in refused)
        assert any(m.startswith("policy 'vault-iac' grants") for m in refused)

    def test_unparseable_policy_is_reported(self, access_stack: Declaration) -> None:
        [message] = reported("acl-least-privilege", stack_args(with_policy(access_stack, 'path "x" {'), TAGS))
        assert message.startswith(f"policy {POLICY!r}: not valid HCL: ")

    def test_default_service_account_is_refused(self, access_stack: Declaration) -> None:
        role = "vault-kubernetes-auth-payments"
        resources = tuple(dataclasses.replace(r, inputs={**r.inputs, "boundServiceAccountNames": ["default"]})
                          if r.name == role else r for r in access_stack.resources)
        violations = run_pack(dataclasses.replace(access_stack, resources=resources), TAGS)
        assert [(v.policy, v.resource, "'default' service account" in v.message) for v in violations] == [
            ("kubernetes-auth-bindings", role, True)]


def test_the_platform_policies_are_the_programs() -> None:
    # The snapshot job's policy is the program's own (environment/operations.py).
    assert SNAPSHOT_IDENTITY in rules.ADMIN_POLICIES
    # The read-only ones (operators, CI's preview role) are checked by rules.read_only_problem instead.
    assert {document.name for document in load_policy_files()} <= {*rules.ADMIN_POLICIES, *rules.READ_ONLY_POLICIES}


@pytest.mark.parametrize(("capabilities", "problem"), [
    (["read", "sudo"], None),  # what a refresh needs on sys/audit: sudo grants no operation of its own
    (["list"], None),
    (["sudo"], "grants sudo on 'sys/audit'"),
    (["read", "sudo", "update"], "grants sudo, update on 'sys/audit'"),
    (["delete"], "grants delete on 'sys/audit'"),
])
def test_a_read_only_policy_may_use_sudo_only_to_read(capabilities: list[str], problem: str | None) -> None:
    assert rules.read_only_problem("auditor", [PathRule("sys/audit", tuple(capabilities))]) == (
        None if problem is None else problem)
