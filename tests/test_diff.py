"""platformctl/core/diff.py (two plans -> Markdown) and the ``diff`` command's base-ref plan."""

from __future__ import annotations

import copy
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from platformctl.adapters.engine import ROOT
from platformctl.commands.diff_command import base_plan
from platformctl.core.access_graph import diff_graph
from platformctl.core.declaration import Declaration
from platformctl.core.diff import PlanDiff, SettingChange, access_section, diff_plans, render_comment, render_markdown
from platformctl.core.plan import plan_document
from render.sql import creation_statements
from tests.support import (
    DELETE,
    TEST_STACKS,
    any_stack,
    declare_config,
    declare_stack,
    spec_of_config,
    with_kubernetes_role,
)

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
            "**Stack `prod`**: no change in what it declares (branch vs `origin/main`).\n")

    def test_prod_down_to_two_replicas_shows(self, prod_plan: dict[str, Any]) -> None:
        diff = diff_plans(prod_plan, with_replicas(prod_plan, 2.0))
        assert [(c.name, c.settings) for c in diff.changed] == [
            (RELEASE, (SettingChange("inputs.values.server.ha.replicas", 5.0, 2.0),))]
        assert render_markdown(diff, "origin/main") == (
            "### Stack `prod`: branch vs `origin/main`\n\n"
            "#### Access changes\n\n"
            "No access changes: every identity reaches exactly what it reached on the base.\n\n"
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
        assert "- + `vault-kv-new` (`vault:kv/secretV2:SecretV2`)\n" in markdown
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
        assert "| `inputs.policy` |" not in markdown

    def test_refused_branch_shows_the_refusal_and_no_resource_list(self, prod_plan: dict[str, Any]) -> None:
        head = {"stack": "prod", "error": "stack 'prod', config key 'x': bad. Fix: y", "resources": {}, "outputs": {}}
        diff = diff_plans(prod_plan, head)
        assert isinstance(diff, PlanDiff)
        assert render_markdown(diff, "main") == (
            "### Stack `prod`: refused\n\n"
            "**The program refuses this branch's config:** `stack 'prod', config key 'x': bad. Fix: y`\n\n"
            "Nothing is declared from it: fix the config to see the diff.\n")

    def test_pipes_are_escaped(self) -> None:
        base = {"stack": "s", "resources": {"r": {"type": "t", "inputs": {"a": "x|y"}}}}
        head = {"stack": "s", "resources": {"r": {"type": "t", "inputs": {"a": "z"}}}}
        assert "  | `inputs.a` | `x\\|y` | `z` |" in render_markdown(diff_plans(base, head), "main")


class TestVaultLogin:
    """The plan never fills in a login: losing it, or switching to cluster-only, shows in the diff."""

    def test_a_removed_token_shows_as_a_refusal(self, prod_plan: dict[str, Any]) -> None:
        head = plan_document(declare_stack("prod", {"vault:token": DELETE, "vault-platform:githubActions": DELETE}))
        markdown = render_markdown(diff_plans(prod_plan, head), "main")
        assert markdown.splitlines()[2].startswith(
            "**The program refuses this branch's config:** `stack 'prod', config key 'vault:token': is not set")

    def test_a_switch_to_cluster_only_removes_the_configuration_layer(self, prod_plan: dict[str, Any]) -> None:
        head = plan_document(declare_stack("prod", configured=False))
        diff = diff_plans(prod_plan, head)
        removed = dict(diff.removed)
        assert removed["vault-vault"] == "pulumi:providers:vault"
        assert removed["vault-kv-mount"] == "vault:index/mount:Mount"
        # The cluster layer stays; the snapshot job goes with the Vault role it logs in with.
        assert {name for name, type_token in removed.items() if type_token.startswith("kubernetes:")} == {
            "vault-snapshots-service-account", "vault-snapshots-cronjob"}
        assert diff.added == ()
        assert [change.key for change in diff.outputs] == ["nextSteps"]


def one_setting(before: str, after: str) -> str:
    """The Markdown diff of resource ``r`` whose setting ``a`` goes from ``before`` to ``after``."""
    base = {"stack": "s", "resources": {"r": {"type": "t", "inputs": {"a": before}}}}
    head = {"stack": "s", "resources": {"r": {"type": "t", "inputs": {"a": after}}}}
    return render_markdown(diff_plans(base, head), "main")


def fenced_blocks(markdown: str) -> list[list[str]]:
    """The fenced code blocks of ``markdown`` as CommonMark reads them: a fence opens with 3+ backticks
    and closes at the first line of backticks only, at least as long (indentation up to the list's); a
    block left open runs to the end."""
    blocks: list[list[str]] = []
    fence = ""
    for line in markdown.splitlines():
        stripped = line.strip()
        if not fence:
            if stripped.startswith("```"):
                fence = stripped[:len(stripped) - len(stripped.lstrip("`"))]
                blocks.append([])
        elif stripped and set(stripped) == {"`"} and len(stripped) >= len(fence):
            fence = ""
        else:
            blocks[-1].append(line)
    return blocks


class TestFences:
    def test_plain_multiline_value_gets_three_backticks(self) -> None:
        markdown = one_setting("a\nb", "a\nc")
        assert "  ```diff\n  --- base\n  +++ branch\n  @@ -1,2 +1,2 @@\n   a\n  -b\n  +c\n  ```\n" in markdown
        assert fenced_blocks(markdown) == [["  --- base", "  +++ branch", "  @@ -1,2 +1,2 @@", "   a", "  -b", "  +c"]]

    def test_a_fence_in_a_value_cannot_close_the_block(self) -> None:
        # A value (unchanged lines show as diff context, indented by one space) that tries to end the
        # code block and write its own Markdown into the comment.
        escape = "x\n```\n**Approved by the platform team** <img src=x>\n"
        markdown = one_setting(escape + "a", escape + "b")
        assert markdown.endswith("  ````diff\n  --- base\n  +++ branch\n  @@ -2,3 +2,3 @@\n   ```\n"
                                 "   **Approved by the platform team** <img src=x>\n  -a\n  +b\n  ````\n")
        [block] = fenced_blocks(markdown)
        assert block[-4:] == ["   ```", "   **Approved by the platform team** <img src=x>", "  -a", "  +b"]

    def test_three_backticks_would_have_let_it_out(self) -> None:
        # What the fixed three-backtick fence did with the same value: the value's first ``` line
        # closed the block, and its next line was read as Markdown.
        escape = "x\n```\n**Approved by the platform team**\n"
        naive = one_setting(escape + "a", escape + "b").replace("````", "```")
        blocks = fenced_blocks(naive)
        assert blocks[0][-1] == "  @@ -2,3 +2,3 @@"
        assert all("Approved" not in line for block in blocks for line in block)
        assert "   **Approved by the platform team**" in naive.splitlines()

    def test_the_fence_outgrows_the_longest_run(self) -> None:
        markdown = one_setting("a\n`````` six", "a\n`` two")
        assert "  ```````diff\n" in markdown  # seven: one more than the longest run
        assert markdown.count("  ```````\n") == 1
        [block] = fenced_blocks(markdown)
        assert block[-2:] == ["  -`````` six", "  +`` two"]

    def test_names_and_labels_are_inline_code_without_backticks(self) -> None:
        base = {"stack": "s`x", "resources": {}}
        head = {"stack": "s`x", "resources": {"r`1": {"type": "t`2", "inputs": {}}}}
        markdown = render_markdown(diff_plans(base, head), "ma`in")
        assert markdown.splitlines()[0] == "### Stack `s'x`: branch vs `ma'in`"
        assert "- + `r'1` (`t'2`)" in markdown


class TestBasePlan:
    def test_plans_a_ref_in_a_worktree_and_removes_it(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Only this call's own worktree is looked for: other checkouts of the repository may be
        # running a diff at the same moment.
        scratch: list[str] = []
        make = tempfile.mkdtemp

        def recorded_mkdtemp(prefix: str) -> str:
            scratch.append(make(prefix=prefix))
            return scratch[-1]

        monkeypatch.setattr(tempfile, "mkdtemp", recorded_mkdtemp)
        document = base_plan("prod", "HEAD", ROOT)
        assert document["stack"] == "prod"
        assert RELEASE in document["resources"]
        worktrees = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=ROOT, capture_output=True,
                                   text=True, check=True).stdout
        (directory,) = scratch
        assert directory.startswith(tempfile.gettempdir())
        assert directory not in worktrees
        assert not Path(directory).exists()

    def test_unknown_ref_is_refused(self) -> None:
        with pytest.raises(RuntimeError, match=r"^git rev-parse --verify --quiet no-such-ref\^\{commit\}"):
            base_plan("prod", "no-such-ref", ROOT)


@pytest.fixture(scope="module")
def access_plan() -> dict[str, Any]:
    return plan_document(declare_stack("access"))


class TestAccessChanges:
    """Gained and lost access per identity, on the test stack ``access`` (tests/stacks/Pulumi.access.yaml)."""

    def section(self, base: dict[str, Any], head: dict[str, Any]) -> str:
        markdown = render_markdown(diff_plans(base, head), "main")
        start = markdown.index("#### Access changes\n\n") + len("#### Access changes\n\n")
        return markdown[start:markdown.index("\n\n", start)]

    def test_a_widened_policy_shows_as_gained_first(self, access_plan: dict[str, Any]) -> None:
        head = plan_document(declare_stack("access", {"vault-platform:policies[0].rules[1]": {
            "path": "secret/data/production/payouts", "capabilities": ["read"]}}))
        markdown = render_markdown(diff_plans(access_plan, head), "main")
        assert markdown.index("#### Access changes") < markdown.index("**0 added, 0 removed, 1 changed**")
        assert self.section(access_plan, head) == (
            "- `production/api-service-sa` **gains** read on `secret/data/production/payouts`")

    def test_a_removed_app_loses_everything(self, access_plan: dict[str, Any]) -> None:
        head = plan_document(declare_stack("access", {"apps/payments/payments.yaml:": DELETE}))
        assert self.section(access_plan, head).splitlines() == [
            "- `payments/payments-sa` (removed) loses read on `database/static-creds/reporting`",
            "- `payments/payments-sa` (removed) loses update on `pki_int/issue/payments-api`",
            "- `payments/payments-sa` (removed) loses read on `secret/data/production/pay*`",
            "- `payments/payments-sa` (removed) loses read on `secret/data/production/payments`",
            "- `payments/payments-sa` (removed) loses read on `secret/data/production/payouts`",
            "- `payments/payments-sa` (removed) loses read on `secret/metadata/production/payments`",
            "- `payments/payments-sa` (removed) loses update on `transit/decrypt/payments-card-data`",
            "- `payments/payments-sa` (removed) loses update on `transit/encrypt/payments-card-data`",
        ]

    def test_a_new_app_and_a_platform_policy_change(self, access_plan: dict[str, Any]) -> None:
        head = with_kubernetes_role(access_plan, "reports", ["api-secrets"])
        iac = head["resources"]["vault-policies-vault-iac"]["inputs"]
        iac["policy"] += 'path "database/creds/*" {\n  capabilities = ["read"]\n}\n'
        assert self.section(access_plan, head).splitlines() == [
            "- `policy vault-iac` **gains** read on `database/creds/*`",
            "- `policy vault-iac` **gains** read on `database/creds/api-role`",
            "- `reports/reports-sa` (new) **gains** read on `secret/data/production/api-service`",
        ]

    def test_a_refused_side_is_not_computed(self, access_plan: dict[str, Any]) -> None:
        base = {**access_plan, "error": "stack 'access': refused", "resources": {}}
        assert self.section(base, access_plan) == "Not computed: the program refuses a side's config."
        head = {**access_plan, "error": "stack 'access': refused", "resources": {}}
        assert access_section(diff_plans(access_plan, head)) == [
            "#### Access changes", "", "Not computed: the program refuses a side's config.", ""]

    def test_the_list_then_its_picture(self, access_plan: dict[str, Any]) -> None:
        head = plan_document(declare_stack("access", {"vault-platform:policies[0].rules[1]": {
            "path": "secret/data/production/payouts", "capabilities": ["read"]}}))
        diff = diff_plans(access_plan, head)
        assert diff.matrices is not None
        graph = diff_graph(*diff.matrices, ["production/api-service-sa"])
        assert '  p1 ==>|"+ data: read"| t1\n' in graph.mermaid  # tests/test_access_graph.py has all of it
        assert access_section(diff) == [
            "#### Access changes", "",
            "- `production/api-service-sa` **gains** read on `secret/data/production/payouts`", "",
            "Identity -> auth role -> policy -> what it reaches: thick green `+` gained, dashed red `-` lost, "
            "thick amber capabilities changed; a target reached as before is not drawn "
            "(`python -m platformctl access access --format mermaid` draws the whole stack).", "",
            "```mermaid", *graph.mermaid.rstrip("\n").split("\n"), "```", ""]

    def test_no_picture_without_a_change(self, access_plan: dict[str, Any]) -> None:
        assert access_section(diff_plans(access_plan, access_plan)) == [
            "#### Access changes", "",
            "No access changes: every identity reaches exactly what it reached on the base.", ""]


@pytest.fixture(scope="module")
def onboarding_markdown(declared: dict[str, Declaration]) -> str:
    """The staging test stack's diff once ``orders-api`` is onboarded with every kind of access."""
    head = plan_document(declare_config(any_stack("staging+onboarded", root=TEST_STACKS)))
    return render_markdown(diff_plans(plan_document(declared["staging"]), head), "origin/main")


def section(markdown: str, start: str) -> str:
    """The lines of ``markdown`` from the one starting with ``start`` to the next list item."""
    lines = markdown.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(start))
    end = next((i for i in range(first + 1, len(lines)) if lines[i].startswith("- ")), len(lines))
    return "\n".join(lines[first:end])


class TestWhatAReviewerSees:
    def test_the_added_apps_policy_paths(self, onboarding_markdown: str) -> None:
        policy = section(onboarding_markdown, "- + `vault-policies-app-orders-api` (`vault:index/policy:Policy`)")
        assert "  ```hcl\n  # Generated by vault-platform for application 'orders-api' in stack 'staging'." in policy
        paths = {line.split('"')[1] for line in policy.splitlines() if line.startswith('  path "')}
        assert paths >= {"database/creds/orders-api-reader", "database/static-creds/orders-api-reporting",
                         "pki_int/issue/orders-api", "secret/data/staging/orders-api",
                         "transit/decrypt/orders-api-data", "transit/encrypt/orders-api-data"}

    def test_the_bound_identity_and_ttls_with_their_units(self, onboarding_markdown: str) -> None:
        role = section(onboarding_markdown, "- + `vault-kubernetes-auth-orders-api`")
        assert '  | `boundServiceAccountNames` | `["orders-api"]` |' in role
        assert '  | `boundServiceAccountNamespaces` | `["orders"]` |' in role
        assert '  | `tokenPolicies` | `["app-orders-api"]` |' in role
        assert "  | `tokenTtl` | `900` (15m) |" in role
        assert "  | `tokenMaxTtl` | `14400` (4h) |" in role

    def test_the_sql_and_the_key_settings(self, onboarding_markdown: str) -> None:
        role = section(onboarding_markdown, "- + `vault-database-orders-api-reader`")
        assert "  | `defaultTtl` | `900` (15m) |" in role
        spec = spec_of_config(any_stack("staging+onboarded", root=TEST_STACKS))
        assert spec.database is not None
        role_spec = spec.database.role["orders-api-reader"]
        statements = creation_statements(role_spec, spec.database.connection[role_spec.connection].admin_setup)
        assert "  ```sql\n" + "".join(f"  {statement}\n" for statement in statements) + "  ```" in role
        assert "orders_api" in "".join(statements)
        # The standard revocation, the same for every role, is one call of the admin functions.
        assert "  | `revocationStatements` | `[\"SELECT vault_api.drop_user('{{name}}');\"]` |" in role
        key = section(onboarding_markdown, "- + `vault-transit-orders-api-data`")
        assert "  | `type` | `aes256-gcm96` |" in key
        assert "  | `exportable` | `false` |" in key

    def test_a_long_block_of_an_added_resource_is_folded(self) -> None:
        base: dict[str, Any] = {"stack": "s", "resources": {}}
        head = {"stack": "s", "resources": {"r": {"type": "t", "inputs": {
            "short": "a\nb", "long": "\n".join(f"line {n}" for n in range(20))}}}}
        markdown = render_markdown(diff_plans(base, head), "main")
        assert "  <details><summary>long: 20 lines</summary>\n\n  `long`:\n\n  ```\n  line 0\n" in markdown
        assert "  line 19\n  ```\n\n  </details>" in markdown
        assert "  `short`:\n\n  ```\n  a\n  b\n  ```" in markdown
        assert markdown.count("<details>") == 1

    def test_a_changed_list_shows_the_items_added(self, onboarding_markdown: str) -> None:
        connection = section(onboarding_markdown, "- `vault-database-postgres`")
        assert "  ```diff\n  --- base\n  +++ branch\n  @@ -1 +1,3 @@\n   api-role\n  +orders-api-reader\n" \
               "  +orders-api-reporting\n  ```" in connection

    def test_the_new_annotations_with_their_templates_folded(self, onboarding_markdown: str) -> None:
        outputs = onboarding_markdown.split("#### Stack outputs\n", 1)[1]
        assert outputs.startswith("\n- + `orders-api-annotations`\n")
        assert "  | `vault.hashicorp.com/role` | `orders-api` |" in outputs
        assert "  | `vault.hashicorp.com/agent-inject-secret-staging-orders-api.env` | " \
               "`secret/data/staging/orders-api` |" in outputs
        before, folded = outputs.split("  <details><summary>6 injector template(s) added</summary>\n", 1)
        assert "agent-inject-template" not in before
        assert folded.rstrip("\n").endswith("  </details>")
        assert "{{- with secret \"secret/data/staging/orders-api\" -}}" in folded

    def test_a_long_value_is_a_diff_marking_what_differs(self) -> None:
        prefix = "arn:aws:iam::111111111111:role/vault-staging-unseal-with-a-long-name-"
        markdown = one_setting(prefix + "one", prefix + "two")
        [block] = fenced_blocks(markdown)
        assert [line for line in block if not line.startswith("  ?")] == [f"  - {prefix}one", f"  + {prefix}two"]
        marks = [line for line in block if line.startswith("  ?")]
        assert marks
        # The marks point under the differing tail only.
        assert all(line[3:].strip() and not line[3:4 + len(prefix)].strip() for line in marks)
        assert "| base | branch |" not in markdown

    def test_a_short_value_stays_in_the_table(self) -> None:
        assert "  | `inputs.a` | `one` | `two` |" in one_setting("one", "two")


class TestComment:
    def test_a_large_change_says_what_its_picture_leaves_out(self, access_plan: dict[str, Any]) -> None:
        head = access_plan
        for number in range(43):
            head = with_kubernetes_role(head, f"app-{number:02d}", ["api-secrets"])
        comment = render_comment([diff_plans(access_plan, head)], "main", [])
        access = comment[comment.index("### Access changes"):comment.index("### Stack `access`")]
        assert access.count(" (new) **gains** read on `secret/data/production/api-service`\n") == 43
        assert ("(`python -m platformctl access access --format mermaid` draws the whole stack). The graph shows "
                "the first 40 of 43 identities whose access changes, by name; the other 3 are in the list.\n"
                "\n```mermaid\nflowchart LR\n") in access
        assert access.count("```mermaid\n") == 1
        graph = access.split("```mermaid\n", 1)[1]
        assert "app-39/app-39-sa" in graph
        assert "app-40/app-40-sa" not in graph

    def test_the_checklist_first_then_each_stack_and_unchanged_ones_in_one_line(
            self, prod_plan: dict[str, Any]) -> None:
        changed = diff_plans(prod_plan, with_replicas(prod_plan, 3.0))
        unchanged = diff_plans({**prod_plan, "stack": "dev"}, {**prod_plan, "stack": "dev"})
        comment = render_comment([unchanged, changed], "origin/main", ["### Outside the repository\n\nNothing."])
        lines = comment.splitlines()
        assert lines[0] == "## Plan diff: what this pull request changes in each stack"
        assert lines.index("### Outside the repository") < lines.index("### Access changes") < lines.index(
            "No access changes in `dev`, `prod`: every identity reaches exactly what it reached on the base.") < (
            lines.index("**Stack `dev`**: no change in what it declares (branch vs `origin/main`).")) < lines.index(
            "### Stack `prod`: branch vs `origin/main`")
        assert comment.count("Access changes") == 1  # gathered at the top, not repeated per stack
