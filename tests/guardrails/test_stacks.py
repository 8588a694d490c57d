"""The whole pack on what each committed stack declares, and on the pull requests it must stop."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_policy import EnforcementLevel

from components import rules
from platformctl.engine import Declaration, unwrap
from policies.guardrails.checks import POLICIES
from tests.support import STACKS, declare_stack

from .harness import Violation, run_pack

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "policies" / "guardrails"


def with_inputs(declaration: Declaration, name: str, change: Mapping[str, Any]) -> Declaration:
    """``declaration`` with resource ``name``'s top-level inputs updated by ``change``."""
    resources = tuple(dataclasses.replace(r, inputs={**r.inputs, **change}) if r.name == name else r
                      for r in declaration.resources)
    return dataclasses.replace(declaration, resources=resources)


class TestCommittedStacks:
    @pytest.mark.parametrize("stack", STACKS)
    def test_passes_the_whole_pack(self, declared: dict[str, Declaration], tags: dict[str, dict[str, str]],
                                   stack: str) -> None:
        assert declared[stack].error is None
        assert run_pack(declared[stack], tags[stack]) == []


class TestPullRequests:
    """What a pull request could try; the spec refuses each before anything is declared, so the
    pack is shown to catch it on its own on resources altered past the spec."""

    def test_prod_at_two_replicas(self, declared: dict[str, Declaration], tags: dict[str, dict[str, str]]) -> None:
        assert str(rules.odd_replicas(2)) in str(declare_stack("prod", {"vault-platform:cluster.replicas": 2}).error)
        release = declared["prod"].named("vault-cluster-release")
        values = unwrap(release.inputs["values"])
        values["server"]["ha"]["replicas"] = 2.0
        violations = run_pack(with_inputs(declared["prod"], release.name, {"values": values}), tags["prod"])
        assert violations == [
            Violation("vault-ha-raft", release.name, "server.ha.replicas: 2 replicas is even; Raft needs an odd "
                      "number to keep a majority through a failure; use 3 or 5", advisory=False),
            Violation("vault-ha-raft", release.name, "server.ha.replicas: 2 replica(s) cannot survive a node "
                      "failure in prod; use 3 or 5", advisory=False)]

    def test_role_bound_to_every_namespace(self, declared: dict[str, Declaration],
                                           tags: dict[str, dict[str, str]]) -> None:
        assert "binds every namespace" in str(declare_stack("prod", {"vault-platform:apps[0].namespace": "*"}).error)
        role = "vault-kubernetes-auth-api-service"
        violations = run_pack(with_inputs(declared["prod"], role, {"boundServiceAccountNamespaces": ["*"]}),
                              tags["prod"])
        assert [(v.policy, v.resource) for v in violations] == [("kubernetes-auth-bindings", role)]

    def test_password_in_plaintext(self, declared: dict[str, Declaration], tags: dict[str, dict[str, str]]) -> None:
        refused = declare_stack("prod", {"vault-platform:database.connections[0].adminPassword": "hunter2"})
        assert "holds a plaintext value where a secret is required" in str(refused.error)
        connection = declared["prod"].named("vault-database-postgres")
        plain = {"postgresql": unwrap(connection.inputs["postgresql"])}
        violations = run_pack(with_inputs(declared["prod"], connection.name, plain), tags["prod"])
        assert [(v.policy, v.resource, v.message.split(" ")[0]) for v in violations] == [
            ("no-plaintext-secrets", connection.name, "postgresql.passwordWo")]


class TestPackFiles:
    def test_policy_names_are_unique_and_described(self) -> None:
        names = [policy.name for policy in POLICIES]
        assert len(names) == len(set(names)) == 14
        assert all(policy.description for policy in POLICIES)

    def test_every_policy_is_mandatory(self) -> None:
        advisory = [p.name for p in POLICIES if p.enforcement_level == EnforcementLevel.ADVISORY]
        assert advisory == []

    def test_pulumi_policy_yaml(self) -> None:
        document = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())
        assert document["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}

    def test_requirements_are_pinned_like_the_project(self) -> None:
        def pins(path: Path) -> dict[str, str]:
            lines = [line for line in path.read_text().splitlines() if line and line[0] not in "#-"]
            return {name.lower().replace("_", "-"): version
                    for name, _, version in (line.partition("==") for line in lines)}

        pack = pins(PACK / "requirements.txt")
        project = pins(ROOT / "constraints.txt")
        assert sorted(pack) == ["pulumi", "pulumi-policy", "python-hcl2"]
        assert {name: project[name] for name in pack} == pack
