"""platformctl/diff.py (two plans -> Markdown) and the ``diff`` command's base-ref plan."""

from __future__ import annotations

import copy
import subprocess
from typing import Any

import pytest

from platformctl.diff import PlanDiff, SettingChange, diff_plans, render_markdown
from platformctl.diff_command import base_plan
from platformctl.engine import ROOT, Declaration
from platformctl.plan import plan_document

RELEASE = "vault-cluster-release"


@pytest.fixture(scope="module")
def prod_plan(declared: dict[str, Declaration]) -> dict[str, Any]:
    return plan_document(declared["prod"])


def with_replicas(plan: dict[str, Any], replicas: float) -> dict[str, Any]:
    edited = copy.deepcopy(plan)
    edited["resources"][RELEASE]["inputs"]["values"]["server"]["ha"]["replicas"] = replicas
    return edited


class TestDiffPlans:
    def test_same_plan_is_empty(self, prod_plan: dict[str, Any]) -> None:
        diff = diff_plans(prod_plan, prod_plan)
        assert diff.empty
        assert render_markdown(diff, "origin/main") == (
            "### Stack `prod`: branch vs `origin/main`\n\n"
            "No change in the declared resources, their settings or the stack outputs.\n")

    def test_prod_down_to_two_replicas_shows(self, prod_plan: dict[str, Any]) -> None:
        diff = diff_plans(prod_plan, with_replicas(prod_plan, 2.0))
        assert [(c.name, c.settings) for c in diff.changed] == [
            (RELEASE, (SettingChange("inputs.values.server.ha.replicas", 5.0, 2.0),))]
        assert render_markdown(diff, "origin/main") == (
            "### Stack `prod`: branch vs `origin/main`\n\n"
            "**0 added, 0 removed, 1 changed** (secrets masked as `[secret]`).\n\n"
            "#### Changed\n\n"
            "- `vault-cluster-release` (`kubernetes:helm.sh/v3:Release`)\n\n"
            "  | setting | base | branch |\n"
            "  | --- | --- | --- |\n"
            "  | `inputs.values.server.ha.replicas` | `5` | `2` |\n")

    def test_added_removed_and_protect(self, prod_plan: dict[str, Any]) -> None:
        head = copy.deepcopy(prod_plan)
        removed = head["resources"].pop("vault-kv-api-service")
        head["resources"]["vault-kv-new"] = removed
        head["resources"]["vault-kv-mount"]["protect"] = False
        markdown = render_markdown(diff_plans(prod_plan, head), "main")
        assert "**1 added, 1 removed, 1 changed**" in markdown
        assert "- + `vault-kv-new` (`vault:kv/secretV2:SecretV2`)" in markdown
        assert "- - `vault-kv-api-service` (`vault:kv/secretV2:SecretV2`)" in markdown
        assert "  | `protect` | `true` | `false` |" in markdown

    def test_secrets_stay_masked(self, prod_plan: dict[str, Any]) -> None:
        head = copy.deepcopy(prod_plan)
        head["resources"]["vault-vault"]["inputs"]["address"] = "https://vault.example:8200"
        markdown = render_markdown(diff_plans(prod_plan, head), "main")
        assert "placeholder-not-decrypted" not in markdown
        assert "[secret]" in render_markdown(diff_plans({"resources": {}}, prod_plan), "main")

    def test_multiline_setting_is_a_unified_diff(self, prod_plan: dict[str, Any]) -> None:
        head = copy.deepcopy(prod_plan)
        policy = head["resources"]["vault-policies-api-secrets"]["inputs"]
        policy["policy"] = policy["policy"].replace('["read"]', '["read", "list"]')
        markdown = render_markdown(diff_plans(prod_plan, head), "main")
        assert "  `inputs.policy`:\n\n  ```diff\n  --- base\n  +++ branch\n" in markdown
        assert '  -  capabilities = ["read"]\n  +  capabilities = ["read", "list"]\n' in markdown

    def test_refused_branch_is_called_out(self, prod_plan: dict[str, Any]) -> None:
        head = {"stack": "prod", "error": "stack 'prod', config key 'x': bad. Fix: y", "resources": {}, "outputs": {}}
        diff = diff_plans(prod_plan, head)
        assert isinstance(diff, PlanDiff)
        assert render_markdown(diff, "main").splitlines()[2] == (
            "**The program refuses this branch's config:** `stack 'prod', config key 'x': bad. Fix: y`")

    def test_pipes_are_escaped(self) -> None:
        base = {"stack": "s", "resources": {"r": {"type": "t", "inputs": {"a": "x|y"}}}}
        head = {"stack": "s", "resources": {"r": {"type": "t", "inputs": {"a": "z"}}}}
        assert "  | `inputs.a` | `x\\|y` | `z` |" in render_markdown(diff_plans(base, head), "main")


class TestBasePlan:
    def test_plans_a_ref_in_a_worktree_and_removes_it(self) -> None:
        document = base_plan("prod", "HEAD", ROOT)
        assert document["stack"] == "prod"
        assert RELEASE in document["resources"]
        worktrees = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=ROOT, capture_output=True,
                                   text=True, check=True).stdout
        assert "platformctl-diff-" not in worktrees

    def test_unknown_ref_is_refused(self) -> None:
        with pytest.raises(RuntimeError, match=r"^git rev-parse --verify --quiet no-such-ref\^\{commit\}"):
            base_plan("prod", "no-such-ref", ROOT)
