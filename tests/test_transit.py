"""Transit: named keys per stack, and per application exactly the operations it declares."""

from __future__ import annotations

from typing import Any

import pytest

from environment import PolicyRule, app_policy_rules
from platformctl.core.declaration import Declaration
from platformctl.core.plan import plan_text
from render.acl import app_policy
from tests.support import API_SERVICE, STACKS, declare_stack, edited, refusal, spec_of

KEY = "vault:transit/secretBackendKey:SecretBackendKey"
KEYS = "vault-platform:transit.keys"
USES = f"{API_SERVICE}transitKeys"
CARD = "payments-card-data"
RECEIPTS = "payments-receipts"


class TestDeclared:
    @pytest.mark.parametrize(("stack", "rotate", "protected"), [
        ("dev", 0, True), ("staging", 2592000, True), ("prod", 2592000, True)])
    def test_keys(self, declared: dict[str, Declaration], stack: str, rotate: int, protected: bool) -> None:
        keys = {r.inputs["name"]: r for r in declared[stack].of_type(KEY)}
        settings = {"backend": "transit", "autoRotatePeriod": rotate, "minDecryptionVersion": 1,
                    "exportable": False, "deletionAllowed": False, "allowPlaintextBackup": False}
        assert {name: dict(r.inputs) for name, r in keys.items()} == {
            CARD: {**settings, "name": CARD, "type": "aes256-gcm96"},
            RECEIPTS: {**settings, "name": RECEIPTS, "type": "ed25519"},
        }
        assert {r.protect for r in keys.values()} == {protected}
        mount = declared[stack].named("vault-transit-mount")
        assert (mount.inputs["path"], mount.inputs["type"], mount.protect) == ("transit", "transit", protected)

    @pytest.mark.parametrize("stack", STACKS)
    def test_no_app_uses_a_key_unless_it_says_so(self, stack: str) -> None:
        spec = spec_of(stack)
        assert not [r for app in spec.apps for r in app_policy_rules(app, spec) if r.path.startswith("transit/")]

    def test_settings_from_the_spec(self) -> None:
        declaration = declare_stack("staging", {KEYS: [
            {"name": "exports", "type": "rsa-4096", "autoRotatePeriod": "90d", "minDecryptionVersion": 3,
             "exportable": True, "deletionAllowed": True}]})
        key = declaration.named("vault-transit-exports")
        assert (key.inputs["type"], key.inputs["autoRotatePeriod"], key.inputs["minDecryptionVersion"],
                key.inputs["exportable"], key.inputs["deletionAllowed"]) == ("rsa-4096", 7776000, 3, True, True)

    def test_a_key_whose_removal_is_stated_may_be_deleted(self) -> None:
        # Vault refuses DELETE transit/keys/:name unless deletion_allowed (found by a real destroy, tests/e2e).
        declaration = declare_stack("prod", {"vault-platform:removals": [f"transit/keys/{CARD}"]})
        card, receipts = (declaration.named(f"vault-transit-{name}") for name in (CARD, RECEIPTS))
        assert (card.inputs["deletionAllowed"], card.protect) == (True, False)
        assert (receipts.inputs["deletionAllowed"], receipts.protect) == (False, True)

    def test_the_plan_shows_the_keys(self, declared: dict[str, Declaration]) -> None:
        text = plan_text(declared["prod"], edited("prod"))
        assert f"+ vault:transit/secretBackendKey:SecretBackendKey  vault-transit-{CARD}  [protected]" in text


class TestAppPolicy:
    @pytest.mark.parametrize(("key", "operations", "paths"), [
        (CARD, ["encrypt"], ["transit/encrypt/payments-card-data"]),
        (CARD, ["decrypt"], ["transit/decrypt/payments-card-data"]),
        (CARD, ["rewrap", "encrypt", "decrypt"], ["transit/decrypt/payments-card-data",
                                                   "transit/encrypt/payments-card-data",
                                                   "transit/rewrap/payments-card-data"]),
        (RECEIPTS, ["sign"], ["transit/sign/payments-receipts"]),
        (RECEIPTS, ["verify", "sign"], ["transit/sign/payments-receipts", "transit/verify/payments-receipts"]),
    ])
    def test_exactly_the_declared_endpoints(self, key: str, operations: list[str], paths: list[str]) -> None:
        spec = spec_of("prod", {USES: [{"key": key, "operations": operations}]})
        rules = app_policy_rules(spec.apps[0], spec)
        assert [r for r in rules if r.path.startswith("transit/")] == [PolicyRule(p, ("update",)) for p in paths]

    def test_the_uploaded_policy(self) -> None:
        changes = {USES: [{"key": CARD, "operations": ["encrypt", "decrypt"]},
                          {"key": RECEIPTS, "operations": ["sign"]}]}
        declaration = declare_stack("prod", changes)
        hcl = declaration.named("vault-policies-app-api-service").inputs["policy"]
        assert hcl == app_policy(spec_of("prod", changes).apps[0], spec_of("prod", changes)).hcl
        for path in ("transit/decrypt/payments-card-data", "transit/encrypt/payments-card-data",
                     "transit/sign/payments-receipts"):
            assert f'path "{path}" {{\n  capabilities = ["update"]\n}}' in hcl
        assert "transit/keys" not in hcl
        assert "transit/verify" not in hcl


@pytest.mark.parametrize(("stack", "changes", "key", "problem"), [
    ("prod", {KEYS: [{"name": "k", "type": "aes512"}]}, "transit.keys[0].type",
     "'aes512' is not a transit key type"),
    ("prod", {KEYS: [{"name": "k", "type": "hmac"}]}, "transit.keys[0].type", "is not a transit key type"),
    ("prod", {KEYS: [{"name": "k", "exportable": True}]}, "transit.keys[0].exportable", "is not allowed in prod"),
    ("prod", {KEYS: [{"name": "k", "deletionAllowed": True}]}, "transit.keys[0].deletionAllowed",
     "is not allowed in prod"),
    ("prod", {KEYS: [{"name": "k", "autoRotatePeriod": "30m"}]}, "transit.keys[0].autoRotatePeriod",
     "is shorter than the 1h Vault allows"),
    ("prod", {KEYS: [{"name": "k", "minDecryptionVersion": 0}]}, "transit.keys[0].minDecryptionVersion",
     "below the minimum"),
    ("prod", {KEYS: [{"name": "k"}, {"name": "k"}]}, "transit.keys[1].name", "a second transit key"),
    ("prod", {USES: [{"key": "nope", "operations": ["encrypt"]}]}, f"{API_SERVICE}transitKeys[0].key",
     "transit key 'nope' is not declared"),
    ("prod", {"vault-platform:transit": None, USES: [{"key": CARD, "operations": ["encrypt"]}]},
     f"{API_SERVICE}transitKeys[0].key", "declared: none"),
    ("prod", {USES: [{"key": CARD, "operations": ["sign"]}]}, f"{API_SERVICE}transitKeys[0].operations[0]",
     "a aes256-gcm96 key cannot sign"),
    ("prod", {USES: [{"key": CARD, "operations": ["encrypt", "verify"]}]},
     f"{API_SERVICE}transitKeys[0].operations[1]", "cannot verify"),
    ("prod", {USES: [{"key": RECEIPTS, "operations": ["encrypt"]}]}, f"{API_SERVICE}transitKeys[0].operations[0]",
     "a ed25519 key cannot encrypt"),
    ("prod", {USES: [{"key": CARD, "operations": ["export"]}]}, f"{API_SERVICE}transitKeys[0].operations[0]",
     "'export' is not a transit operation"),
    ("prod", {USES: [{"key": CARD, "operations": []}]}, f"{API_SERVICE}transitKeys[0].operations", "is empty"),
    ("prod", {USES: [{"key": CARD, "operations": ["encrypt"]}, {"key": CARD, "operations": ["decrypt"]}]},
     f"{API_SERVICE}transitKeys[1].key", "is listed twice"),
])
def test_refused(stack: str, changes: dict[str, Any], key: str, problem: str) -> None:
    assert problem in str(refusal(stack, changes, key if key.startswith("apps/") else f"vault-platform:{key}"))


@pytest.mark.parametrize("setting", ["exportable", "deletionAllowed"])
def test_outside_prod_a_key_may_be_exportable_or_deletable(setting: str) -> None:
    spec = spec_of("staging", {KEYS: [{"name": "k", setting: True}]})
    assert spec.transit is not None
    assert getattr(spec.transit.keys[0], "exportable" if setting == "exportable" else "deletion_allowed") is True
