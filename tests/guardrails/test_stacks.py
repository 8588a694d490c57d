"""The whole pack on what each committed stack declares, and on the pull requests it must stop."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pulumi_policy import EnforcementLevel

from platformctl.core.declaration import Declaration, unwrap
from policies.guardrails.checks import POLICIES, VAULT_PROVIDER
from tests.support import ANY_STACK, API_SERVICE, any_stack, declare_config, declare_stack, deployed_cluster
from vaultmodel import rules

from .harness import Violation, run_pack

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "policies" / "guardrails"


def imported_by(module: str) -> tuple[set[str], set[str]]:
    """(the distributions, the repository modules) that importing ``module`` loads in a fresh interpreter."""
    script = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    modules: list[str] = json.loads(result.stdout)
    owners = importlib.metadata.packages_distributions()
    distributions = {str(canonicalize_name(d)) for m in modules for d in owners.get(m.split(".")[0], ())}
    local = {m for m in modules
             if m.split(".")[0] in ("components", "environment", "platformctl", "policies", "render", "vaultmodel")}
    return distributions, local


def requirement_closure(names: list[str]) -> set[str]:
    """``names`` and every distribution they require, as installed here."""
    seen: set[str] = set()
    pending = list(names)
    while pending:
        name = canonicalize_name(pending.pop())
        if name in seen:
            continue
        seen.add(name)
        for text in importlib.metadata.requires(name) or ():
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return seen


def with_inputs(declaration: Declaration, name: str, change: Mapping[str, Any]) -> Declaration:
    """``declaration`` with resource ``name``'s top-level inputs updated by ``change``."""
    resources = tuple(dataclasses.replace(r, inputs={**r.inputs, **change}) if r.name == name else r
                      for r in declaration.resources)
    return dataclasses.replace(declaration, resources=resources)


class TestCommittedStacks:
    """Each committed stack, and each with an application onboarded, passes the whole pack."""

    @pytest.mark.parametrize("stack", ANY_STACK)
    def test_passes_the_whole_pack(self, any_declared: dict[str, Declaration], stack: str) -> None:
        assert any_declared[stack].error is None
        assert run_pack(any_declared[stack], any_stack(stack).tags) == []

    @pytest.mark.parametrize("stack", ANY_STACK)
    def test_cluster_only_passes_the_whole_pack(self, stack: str) -> None:
        # A new environment's first `pulumi up`: the cluster, no Vault provider and no Vault resource.
        deployed_cluster(stack)
        config = any_stack(stack, configured=False)
        declaration = declare_config(config)
        assert declaration.error is None
        assert declaration.of_type("kubernetes:helm.sh/v3:Release") != []
        assert [r for r in declaration.resources if r.type.startswith("vault:") or r.type == VAULT_PROVIDER] == []
        assert run_pack(declaration, config.tags) == []


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
        everyone = declare_stack("prod", {f"{API_SERVICE}environments.prod.namespace": "*"})
        assert "binds every namespace" in str(everyone.error)
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
        assert len(names) == len(set(names)) == 22
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
        assert sorted(pack) == ["publicsuffixlist", "pulumi", "pulumi-policy", "python-hcl2"]
        assert {name: project[name] for name in pack} == pack

    def test_pack_imports_only_what_its_venv_installs(self) -> None:
        # The CLI runs the pack in policies/guardrails/venv, with its requirements.txt only: what the
        # checks import from the repository (the shared rules, the ACL parser, the engine's secret
        # marker) must need nothing more.
        allowed = requirement_closure(["pulumi-policy", "pulumi", "python-hcl2", "publicsuffixlist"])
        distributions, local = imported_by("policies.guardrails.checks")
        assert distributions - allowed == set()
        assert {"vaultmodel.rules", "render.acl", "platformctl.adapters.engine"} <= local
        # The AWS commands need boto3, which the pack's venv does not have.
        distributions, _ = imported_by("platformctl.adapters.aws_clients")
        assert {"boto3", "botocore"} <= distributions - allowed
