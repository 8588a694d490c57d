"""The IaC token can do exactly what the IaC does: policies/acl/vault-iac.hcl against every Vault API
call (policies/acl/vault-iac-calls.yaml, taken from terraform-provider-vault's vault/resource_*.go)
that each committed stack's resources need, with Vault's ACL rules."""

from __future__ import annotations

import pytest

from environment import load_policy_files
from platformctl.core.declaration import Declaration
from render.acl import parse_policy
from tests.support import ANY_STACK, declare_stack
from vaultmodel.iac_calls import CATALOGUE, Call, MissingFromCatalogue, calls, catalogue, check
from vaultmodel.vault_acl import PathRule

POLICY = "vault-iac"


def iac_rules() -> tuple[PathRule, ...]:
    (document,) = [d for d in load_policy_files() if d.name == POLICY]
    return tuple(PathRule(rule.path, rule.capabilities) for rule in parse_policy(document.hcl, POLICY))


def calls_of(declaration: Declaration) -> tuple[Call, ...]:
    return calls([(r.name, r.type, r.inputs) for r in declaration.resources])


@pytest.mark.parametrize("stack", ANY_STACK)
def test_every_call_of_the_stack_is_allowed(any_declared: dict[str, Declaration], stack: str) -> None:
    report = check(POLICY, iac_rules(), calls_of(any_declared[stack]))
    assert report.denied == (), f"policies/acl/{POLICY}.hcl denies calls {stack} needs:\n" + "\n".join(report.denied)


def test_the_policy_grants_nothing_that_no_call_uses(any_declared: dict[str, Declaration]) -> None:
    needed = [call for stack in ANY_STACK for call in calls_of(any_declared[stack])]
    unused = check(POLICY, iac_rules(), needed).unused
    assert unused == (), f"policies/acl/{POLICY}.hcl grants what no call uses: " + ", ".join(
        f"{capability} on {path}" for path, capability in unused)


class TestCatalogue:
    def test_a_kv_secret_over_its_lifetime(self) -> None:
        # vault/resource_kv_secret_v2.go: write and delete the latest version; never read (disable_read).
        declaration = declare_stack("access")
        kv = [c for c in calls_of(declaration) if c.needed_by.startswith("vault-kv-payments ")]
        assert [(c.capabilities, c.path, c.needed_by.rsplit(" ", 1)[1]) for c in kv] == [
            (("create", "update"), "secret/data/production/payments", "create"),
            (("update",), "secret/data/production/payments", "update"),
            (("delete",), "secret/data/production/payments", "delete"),
        ]

    def test_pki_uses_the_issuer_api(self) -> None:
        paths = {c.path for c in calls_of(declare_stack("access"))}
        assert {"pki/issuers/generate/root/internal", "pki/issuer/computed-issuer-id",
                "pki_int/issuers/generate/intermediate/internal"} <= paths
        assert "pki/root/generate/internal" not in paths

    def test_a_resource_type_missing_from_the_catalogue_fails_naming_it(self) -> None:
        with pytest.raises(MissingFromCatalogue, match=r"^resource type 'vault:example/thing:Thing' \(x\) is "
                                                       r"declared but not in vault-iac-calls\.yaml: add"):
            calls([("x", "vault:example/thing:Thing", {})])

    def test_a_missing_input_is_named(self) -> None:
        with pytest.raises(MissingFromCatalogue, match="needs input 'path'"):
            calls([("m", "vault:index/mount:Mount", {"type": "kv"})])

    def test_every_entry_cites_the_providers_source(self) -> None:
        document = catalogue(CATALOGUE)
        for section in ("provider", "resources", "commands"):
            for type_token, entry in document[section].items():
                assert entry["source"], type_token
        assert all(entry["source"].startswith("vault/resource_") for entry in document["resources"].values())


class TestCheck:
    def test_a_denied_call_is_named(self) -> None:
        rules = tuple(rule if rule.path != "secret/data/*" else PathRule(rule.path, ("create", "read", "update"))
                      for rule in iac_rules())
        denied = check(POLICY, rules, calls_of(declare_stack("access"))).denied
        assert "vault-kv-payments (vault:kv/secretV2:SecretV2) delete: delete on secret/data/production/payments" \
            in denied

    def test_sudo_is_checked(self) -> None:
        rules = tuple(rule if rule.path != "sys/audit/*" else PathRule(rule.path, ("update", "delete"))
                      for rule in iac_rules())
        denied = check(POLICY, rules, calls_of(declare_stack("access"))).denied
        assert "vault-audit-file (vault:index/audit:Audit) create: sudo on sys/audit/file" in denied

    def test_an_unused_grant_is_listed(self) -> None:
        rules = (*iac_rules(), PathRule("sys/raw/*", ("read",)))
        assert check(POLICY, rules, calls_of(declare_stack("access"))).unused[-1:] == (("sys/raw/*", "read"),)
