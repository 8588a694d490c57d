"""What waits for what, in every committed stack: the engine applies a resource only after those it
depends on, so these orderings are what keeps Vault from being configured too early."""

from __future__ import annotations

import functools

import pytest

from platformctl.core.declaration import Declaration, DeclaredResource
from tests.support import ANY_STACK, any_stack, declare_config, deployed_cluster

AUDIT = "vault:index/audit:Audit"
RELEASE = "kubernetes:helm.sh/v3:Release"
IAC_POLICY = "vault-policies-vault-iac"


@functools.cache
def declared(stack: str) -> Declaration:
    """A member of ``ANY_STACK`` (a committed stack, or one with an application onboarded), declared."""
    return declare_config(any_stack(stack))


def waits_for(declaration: Declaration, resource: DeclaredResource) -> set[str]:
    """URNs ``resource`` waits for, directly or through what it waits for."""
    by_urn = {r.urn: r for r in declaration.resources}
    seen: set[str] = set()
    pending = list(resource.dependencies)
    while pending:
        urn = pending.pop()
        if urn not in seen:
            seen.add(urn)
            pending += by_urn[urn].dependencies if urn in by_urn else ()
    return seen


def vault_resources(declaration: Declaration) -> list[DeclaredResource]:
    """Every resource the Vault provider applies (the provider itself excluded)."""
    return [r for r in declaration.resources
            if r.custom and r.type.startswith("vault:") and not r.type.startswith("pulumi:providers:")]


@pytest.mark.parametrize("stack", ANY_STACK)
class TestVaultConfigurationWaits:
    def test_every_vault_resource_waits_for_the_helm_release(self, stack: str) -> None:
        deployed_cluster(stack)
        declaration = declared(stack)
        (release,) = declaration.of_type(RELEASE)
        late = [r.name for r in vault_resources(declaration) if release.urn not in waits_for(declaration, r)]
        assert vault_resources(declaration)
        assert late == []

    def test_everything_but_the_audit_devices_waits_for_every_audit_device(self, stack: str) -> None:
        declaration = declared(stack)
        devices = {r.urn for r in declaration.of_type(AUDIT)}
        assert devices
        unaudited = [r.name for r in vault_resources(declaration)
                     if r.type != AUDIT and not devices <= waits_for(declaration, r)]
        assert unaudited == []

    def test_everything_after_the_audit_devices_waits_for_the_iac_policy(self, stack: str) -> None:
        # A change that adds a grant to vault-iac and the resource needing it applies the grant first.
        declaration = declared(stack)
        policy = declaration.named(IAC_POLICY)
        assert policy.inputs["name"] == "vault-iac"
        early = [r.name for r in vault_resources(declaration)
                 if r.type != AUDIT and r is not policy and policy.urn not in waits_for(declaration, r)]
        assert early == []
        assert {r.urn for r in declaration.of_type(AUDIT)} <= waits_for(declaration, policy)


def test_a_resource_without_an_input_from_its_wait_would_be_caught() -> None:
    """The closure follows only recorded dependencies: a resource that records none waits for nothing."""
    declaration = declared("prod")
    loose = DeclaredResource(type="vault:index/policy:Policy", name="loose", urn="urn:loose", inputs={},
                             custom=True, parent="", provider="", protect=False)
    assert waits_for(declaration, loose) == set()
