"""Raft autopilot per stack: dead-server cleanup with a threshold and a minimum quorum of the
replicas, from the spec with defaults per tier, sent to the provider in the form Vault reads back.

Sources: terraform-provider-vault vault/resource_raft_autopilot.go (field names, defaults, and that
a false or zero field is not sent: ``d.GetOk``); Vault vault/logical_raft.go (cleanup refused with
``min_quorum`` below 3 or a threshold below 1m; durations read back as Go's ``Duration.String()``)."""

from __future__ import annotations

import pytest

from environment import RaftAutopilot
from platformctl.core.declaration import Declaration
from render.autopilot import autopilot_inputs, go_duration
from tests.support import apply_edits, declare_stack, refusal, spec_of, spec_of_config

P = "vault-platform:"
AUTOPILOT = "vault:index/raftAutopilot:RaftAutopilot"


class TestSpec:
    @pytest.mark.parametrize(("stack", "expected"), [
        ("dev", RaftAutopilot(cleanup_dead_servers=False, dead_server_last_contact_threshold=86400, min_quorum=1)),
        ("staging", RaftAutopilot(cleanup_dead_servers=True, dead_server_last_contact_threshold=300, min_quorum=3)),
        ("prod", RaftAutopilot(cleanup_dead_servers=True, dead_server_last_contact_threshold=600, min_quorum=5)),
    ])
    def test_defaults_per_tier(self, stack: str, expected: RaftAutopilot) -> None:
        assert spec_of(stack).deployed.autopilot == expected

    @pytest.mark.parametrize(("replicas", "cleanup"), [(1, False), (3, True), (5, True), (7, True)])
    def test_min_quorum_follows_the_replicas(self, replicas: int, cleanup: bool) -> None:
        autopilot = spec_of("staging" if replicas > 1 else "dev", {f"{P}cluster.replicas": replicas}).deployed.autopilot
        assert (autopilot.min_quorum, autopilot.cleanup_dead_servers) == (replicas, cleanup)

    @pytest.mark.parametrize(("value", "seconds"), [("1m", 60), ("30m", 1800), ("2h", 7200)])
    def test_threshold_can_be_set(self, value: str, seconds: int) -> None:
        changes = {f"{P}cluster.autopilot": {"deadServerLastContactThreshold": value}}
        assert spec_of("prod", changes).deployed.autopilot.dead_server_last_contact_threshold == seconds

    def test_threshold_below_a_minute_is_refused_with_a_fix_that_applies(self) -> None:
        changes = {f"{P}cluster.autopilot": {"deadServerLastContactThreshold": "30s"}}
        key = f"{P}cluster.autopilot.deadServerLastContactThreshold"
        problem = refusal("prod", changes, key)
        assert (problem.problem, problem.fix) == ("30s is below the 1m Vault accepts", "use 1m or more, e.g. 10m")
        fixed = spec_of_config(apply_edits("prod", changes, problem.edits))
        assert fixed.deployed.autopilot.dead_server_last_contact_threshold == 600

    def test_a_bare_number_is_refused(self) -> None:
        changes = {f"{P}cluster.autopilot": {"deadServerLastContactThreshold": 600}}
        problem = refusal("prod", changes, f"{P}cluster.autopilot.deadServerLastContactThreshold")
        assert problem.problem == "600 has no unit"

    def test_an_unknown_key_is_refused(self) -> None:
        changes = {f"{P}cluster.autopilot": {"minQuorum": 3}}
        problem = refusal("prod", changes, f"{P}cluster.autopilot.minQuorum")
        assert problem.problem == "is not a known key"


class TestInputs:
    @pytest.mark.parametrize(("seconds", "text"), [
        (10, "10s"), (59, "59s"), (60, "1m0s"), (90, "1m30s"), (600, "10m0s"), (3600, "1h0m0s"),
        (5400, "1h30m0s"), (86400, "24h0m0s"), (90061, "25h1m1s")])
    def test_durations_as_go_prints_them(self, seconds: int, text: str) -> None:
        assert go_duration(seconds) == text

    def test_vaults_defaults_are_written_out(self) -> None:
        # The provider's autopilotDefaults, in the form Vault reads back.
        assert autopilot_inputs(RaftAutopilot(True, 86400, 3)) == {
            "cleanup_dead_servers": True, "dead_server_last_contact_threshold": "24h0m0s", "min_quorum": 3,
            "last_contact_threshold": "10s", "max_trailing_logs": 1000, "server_stabilization_time": "10s"}


class TestDeclared:
    @pytest.mark.parametrize(("stack", "inputs"), [
        ("dev", {"cleanupDeadServers": False, "deadServerLastContactThreshold": "24h0m0s", "minQuorum": 1}),
        ("staging", {"cleanupDeadServers": True, "deadServerLastContactThreshold": "5m0s", "minQuorum": 3}),
        ("prod", {"cleanupDeadServers": True, "deadServerLastContactThreshold": "10m0s", "minQuorum": 5}),
    ])
    def test_exact_provider_inputs(self, declared: dict[str, Declaration], stack: str,
                                   inputs: dict[str, object]) -> None:
        (autopilot,) = declared[stack].of_type(AUTOPILOT)
        assert autopilot.name == "vault-autopilot-config"
        assert dict(autopilot.inputs) == {**inputs, "lastContactThreshold": "10s", "maxTrailingLogs": 1000,
                                          "serverStabilizationTime": "10s"}
        (provider,) = declared[stack].of_type("pulumi:providers:vault")
        assert autopilot.provider.startswith(provider.urn)
        parent = next(r for r in declared[stack].resources if r.urn == autopilot.parent)
        assert (parent.type, parent.name) == ("vault-platform:autopilot:Autopilot", "vault-autopilot")

    def test_configured_after_the_iac_policy_which_waits_for_the_audit_devices(
            self, declared: dict[str, Declaration]) -> None:
        (autopilot,) = declared["prod"].of_type(AUTOPILOT)
        policy = declared["prod"].named("vault-policies-vault-iac")
        audits = {r.urn for r in declared["prod"].of_type("vault:index/audit:Audit")}
        assert audits
        assert set(autopilot.dependencies) == {policy.urn}
        assert audits <= set(policy.dependencies)

    def test_scaling_down_lowers_the_quorum(self) -> None:
        (autopilot,) = declare_stack("prod", {f"{P}cluster.replicas": 3}).of_type(AUTOPILOT)
        assert (autopilot.inputs["minQuorum"], autopilot.inputs["cleanupDeadServers"]) == (3, True)

    def test_none_before_vault_is_initialized(self) -> None:
        declaration = declare_stack("prod", configured=False)
        assert declaration.error is None
        assert declaration.of_type(AUTOPILOT) == []
