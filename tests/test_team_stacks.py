"""An environment that states ``vault-platform:teamStacks`` declares its platform in its own stack and
each team's applications in ``<stack>.<team>``: which stack declares what, that the split declares the
same Vault objects as one stack does, what a team's stack refuses, and the stacks a workflow runs."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from environment import SpecError, load_policy_files, stack_parts
from environment.identity import DEPLOY_POLICY
from environment.policies import data_plane
from platformctl.__main__ import main
from platformctl.adapters import stackfile
from platformctl.adapters.engine import declare, declare_environment
from platformctl.adapters.stackfile import stack_file, stacks
from platformctl.commands import team_stacks_command
from platformctl.core import change_reach, resume
from platformctl.core.declaration import Declaration
from platformctl.core.plan import fingerprint
from platformctl.core.stack_config import StackConfig
from policies.guardrails import checks
from tests.guardrails.harness import run_pack
from tests.support import ORDERS, ORDERS_FILE, commit, edited, refusal, repository_copy, spec_of, spec_of_config
from tests.test_import_graph import PACKAGES, ROOT, imports_of, project_modules
from vaultmodel import iac_calls, vault_acl

P = "vault-platform:"
SPLIT = {f"{P}teamStacks": True, ORDERS: ORDERS_FILE}
# What a stack declares in Vault, by what it is there (type and name), whichever stack declares it.
NAMES = {"vault:index/policy:Policy": "name", "vault:kubernetes/authBackendRole:AuthBackendRole": "roleName",
         "vault:kv/secretV2:SecretV2": "name", "vault:database/secretBackendRole:SecretBackendRole": "name"}


def as_stack(config: StackConfig, stack: str) -> StackConfig:
    """``config`` run as the stack ``stack`` (a team's, reading its environment's copy)."""
    return dataclasses.replace(config, stack=stack)


def run(config: StackConfig) -> Declaration:
    declaration = declare(config.stack, config.config, config.secret_keys, config.apps)
    assert declaration.error is None, declaration.error
    return declaration


def vault_objects(declaration: Declaration) -> set[tuple[str, str]]:
    return {(r.type, str(r.inputs[NAMES[r.type]])) for r in declaration.resources if r.type in NAMES}


class TestWhichStackDeclaresWhat:
    def test_without_the_setting_the_environments_stack_declares_every_application(self) -> None:
        spec = spec_of("prod", {ORDERS: ORDERS_FILE})
        assert (spec.team_stacks, spec.team) == (False, None)
        assert [app.name for app in spec.declared_apps] == ["api-service", "orders-api"]
        assert spec.declares(None)
        assert spec.declares("orders-api")

    def test_the_environments_stack_declares_the_platform_alone(self) -> None:
        spec = spec_of("prod", SPLIT)
        assert spec.declared_apps == ()
        assert spec.declares(None)
        assert not spec.declares("orders-api")

    def test_a_teams_stack_declares_its_applications_and_what_their_files_declare(self) -> None:
        spec = spec_of_config(as_stack(edited("prod", SPLIT), "prod.orders"))
        assert (spec.stack, spec.team) == ("prod", "orders")
        assert [app.name for app in spec.declared_apps] == ["orders-api"]
        assert [(s.name, s.owner) for s in spec.kv.secrets] == [("api-service", None), ("orders-api", "orders-api")]
        assert spec.declares("orders-api")
        assert not spec.declares("api-service")
        assert not spec.declares(None)

    def test_the_split_declares_the_same_vault_objects_as_one_stack(self) -> None:
        whole = vault_objects(run(edited("prod", {ORDERS: ORDERS_FILE})))
        split = edited("prod", SPLIT)
        parts = [vault_objects(run(as_stack(split, stack))) for stack in ("prod", "prod.orders", "prod.payments")]
        assert set().union(*parts) == whole
        assert sum(len(part) for part in parts) == len(whole)  # each object in one stack only
        assert parts[1] == {("vault:index/policy:Policy", "app-orders-api"),
                            ("vault:kubernetes/authBackendRole:AuthBackendRole", "orders-api"),
                            ("vault:kv/secretV2:SecretV2", "production/orders-api"),
                            ("vault:database/secretBackendRole:SecretBackendRole", "orders-api-reader")}

    def test_the_offline_plan_of_the_environment_declares_all_its_stacks(self) -> None:
        split = edited("prod", SPLIT)
        whole = declare_environment(split.stack, split.config, split.secret_keys, split.apps)
        assert whole.error is None
        assert vault_objects(whole) == vault_objects(run(edited("prod", {ORDERS: ORDERS_FILE})))
        assert {r.urn.split("::")[0] for r in whole.resources} == {
            "urn:pulumi:prod", "urn:pulumi:prod.orders", "urn:pulumi:prod.payments"}
        assert whole.fingerprints == {stack: fingerprint(run(as_stack(split, stack)))
                                      for stack in ("prod", "prod.orders", "prod.payments")}
        alone = edited("prod")  # without the setting: the environment's stack alone
        assert ({r.urn for r in declare_environment(alone.stack, alone.config, alone.secret_keys, alone.apps).resources}
                == {r.urn for r in run(alone).resources})

    def test_a_teams_stack_names_each_kind_of_object_apart_and_keeps_its_former_names(self) -> None:
        """The orders application and its KV secret share a name; before, so did their resources. Each also
        keeps the name the environment's stack gave it before it stated teamStacks (the parent's too:
        ``tests/test_team_move.py``)."""
        declared = run(as_stack(edited("prod", SPLIT), "prod.orders"))
        assert {r.name: [alias.split("\n")[1].strip() for alias in r.aliases] for r in declared.resources} == {
            "apps-orders": [],
            "apps-orders-vault": ['name: "vault-vault"'],
            "apps-orders-policies-app-orders-api": ['name: "apps-orders-app-orders-api"',
                                                    'name: "vault-policies-app-orders-api"'],
            "apps-orders-kubernetes-auth-orders-api": ['name: "apps-orders-orders-api"',
                                                       'name: "vault-kubernetes-auth-orders-api"'],
            "apps-orders-kv-orders-api": ['name: "apps-orders-orders-api"', 'name: "vault-kv-orders-api"'],
            "apps-orders-kv-orders-api-token": ['name: "apps-orders-orders-api-token"',
                                                'name: "vault-kv-orders-api-token"'],
            "apps-orders-database-orders-api-reader": ['name: "apps-orders-orders-api-reader"',
                                                       'name: "vault-database-orders-api-reader"'],
        }

    def test_a_teams_stack_exports_its_applications_annotations_only(self) -> None:
        team = run(as_stack(edited("prod", SPLIT), "prod.orders"))
        assert sorted(team.outputs) == ["orders-api-annotations"]
        assert "orders-api-annotations" not in run(edited("prod", SPLIT)).outputs

    def test_a_teams_stack_logs_in_as_its_environments_does(self) -> None:
        split = edited("prod", SPLIT)
        (platform,) = run(split).of_type("pulumi:providers:vault")
        (team,) = run(as_stack(split, "prod.orders")).of_type("pulumi:providers:vault")
        assert team.inputs == platform.inputs

    def test_a_team_without_applications_declares_nothing_in_vault(self) -> None:
        gone = run(as_stack(edited("prod", SPLIT), "prod.billing"))
        assert vault_objects(gone) == set()


class TestRefusals:
    def test_a_teams_stack_of_an_environment_that_does_not_split_is_refused(self) -> None:
        with pytest.raises(SpecError) as refused:
            spec_of_config(as_stack(edited("prod", {ORDERS: ORDERS_FILE}), "prod.orders"))
        assert str(refused.value) == (
            "stack 'prod.orders', config key 'vault-platform:teamStacks': 'prod.orders' is a team's stack, but "
            "prod declares its applications in its own stack. Fix: set vault-platform:teamStacks: true in "
            "Pulumi.prod.yaml, or run the stack prod")

    def test_the_fix_is_accepted(self) -> None:
        assert spec_of_config(as_stack(edited("prod", SPLIT), "prod.orders")).team == "orders"

    def test_a_team_name_that_is_no_folder_name_is_refused(self) -> None:
        with pytest.raises(SpecError) as refused:
            spec_of_config(as_stack(edited("prod", SPLIT), "prod.Orders_team"))
        assert (refused.value.key, refused.value.fix) == (
            "stack name", "name the stack prod.<team>, after a folder under apps/")

    def test_the_setting_is_true_or_false_as_the_cli_hands_it_over(self) -> None:
        assert spec_of("prod", {f"{P}teamStacks": "true"}).team_stacks
        assert not spec_of("prod", {f"{P}teamStacks": "false"}).team_stacks
        refused = refusal("prod", {f"{P}teamStacks": "yes"}, f"{P}teamStacks")
        assert (refused.problem, refused.fix) == ("'yes' is not true or false",
                                                  "write true or false, or remove the key")


class TestTheStacksAWorkflowRuns:
    def test_one_a_team_with_applications_there_sorted(self) -> None:
        assert team_stacks_command.team_stacks(spec_of("prod", SPLIT)) == ["prod.orders", "prod.payments"]

    def test_and_every_team_stack_the_backend_still_holds(self) -> None:
        held = ["prod", "prod.billing", "organization/vault-platform/prod.search", "staging.ops", "prod.orders"]
        assert team_stacks_command.team_stacks(spec_of("prod", SPLIT), held) == [
            "prod.billing", "prod.orders", "prod.payments", "prod.search"]

    def test_with_changed_teams_only_theirs(self) -> None:
        spec = spec_of("prod", SPLIT)
        assert team_stacks_command.team_stacks(spec, ["prod.billing"], {"billing", "orders", "search"}) == [
            "prod.billing", "prod.orders"]
        assert team_stacks_command.team_stacks(spec, ["prod.billing"], set()) == []

    def test_none_when_the_environment_keeps_its_applications(self) -> None:
        assert team_stacks_command.team_stacks(spec_of("prod", {ORDERS: ORDERS_FILE}), ["prod.orders"]) == []

    def test_the_command_writes_each_team_a_verbatim_copy_of_the_environments_file(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        environment = stack_file("dev").read_text()
        split = environment.replace("config:\n", f"config:\n  {P}teamStacks: true\n", 1)
        root = tmp_path / "project"
        (root / "stacks").mkdir(parents=True)
        (root / "stacks" / "Pulumi.dev.yaml").write_text(split)
        monkeypatch.setattr(team_stacks_command, "ROOT", root)
        monkeypatch.setattr(team_stacks_command, "stack_file", lambda stack: root / "stacks" / f"Pulumi.{stack}.yaml")
        spec = spec_of("dev", {f"{P}teamStacks": True})
        monkeypatch.setattr(stackfile, "spec_or_report", lambda stack: spec)
        assert main(["team-stacks", "dev", "dev.gone"]) == 0
        assert capsys.readouterr().out == "dev.gone\ndev.payments\n"
        for team in ("gone", "payments"):
            written = (root / "stacks" / f"Pulumi.dev.{team}.yaml").read_text()
            assert written == ("# Generated by platformctl team-stacks from Pulumi.dev.yaml: edit that file, "
                               "never this one.\n" + split)

    @pytest.mark.parametrize(("stack", "parts"), [
        ("prod", ("prod", None)),
        ("prod.payments", ("prod", "payments")),
        ("organization/vault-platform/prod.search", ("prod", "search")),  # as the backend lists it
        ("prod.", ("prod", "")),  # a team's stack without a team: the loader refuses its name
    ])
    def test_a_stacks_name_is_its_environment_and_its_team(self, stack: str, parts: tuple[str, str | None]) -> None:
        assert stack_parts(stack) == parts

    def test_a_teams_stack_reads_its_environments_file_and_is_no_environment(self) -> None:
        assert stack_file("prod.payments") == stack_file("prod")
        assert all("." not in stack for stack in stacks())


class TestWhatAPullRequestPreviews:
    """``team-stacks --changed-since``: the team stacks a change can change, and no other."""

    PROGRAM_CHANGES = {"prod", "prod.payments", "staging.orders"}
    """What the plans tell of a change to the program: the environment's stack, one team's, and a stack of
    another environment."""

    @pytest.mark.parametrize(("changed", "teams"), [
        (["apps/orders/orders-api.yaml"], {"orders"}),
        (["apps/orders/orders-api.yaml", "apps/billing/old.yaml"], {"billing", "orders"}),  # billing's last app
        ([], set()),
        (["docs/scaling.md", "tests/test_plan.py", "README.md", "schema/app.schema.json"], set()),
        (["components/kv.py"], {"payments"}),
        (["vaultmodel/rules.py", "apps/orders/orders-api.yaml"], {"orders", "payments"}),
        (["apps/orders/orders-api.yaml", "stacks/Pulumi.prod.yaml"], None),  # every team's stack copies it
        (["requirements.txt"], None),
        (["Pulumi.yaml"], None),
        (["policies/guardrails/checks.py"], None),
        (["platformctl/core/plan.py"], None),
        ([".github/workflows/pr-preview.yml"], None),
        (["apps/stray.yaml"], None),  # refused by the loader anyway
    ])
    def test_the_teams_a_change_can_change(self, changed: list[str], teams: set[str] | None) -> None:
        asked: list[bool] = []

        def plan_changes() -> set[str]:
            asked.append(True)
            return self.PROGRAM_CHANGES

        assert change_reach.changed_teams(changed, plan_changes, "prod") == teams
        # The plans run only for a change to the program that no other file sends to every team.
        assert asked == ([True] if teams is not None and any(p.startswith(change_reach.PROGRAM) for p in changed)
                         else [])

    def test_every_team_when_the_bases_plan_tells_nothing(self) -> None:
        assert change_reach.changed_teams(["components/kv.py"], lambda: None, "prod") is None

    def test_the_stacks_whose_fingerprint_differs_or_that_one_side_lacks(self) -> None:
        assert change_reach.stacks_whose_plan_changed({"prod": "1", "prod.a": "2", "prod.gone": "3"},
                                                      {"prod": "1", "prod.a": "9", "prod.new": "4"}) == {
            "prod.a", "prod.gone", "prod.new"}
        assert change_reach.stacks_whose_plan_changed({"prod": "1"}, {"prod": "1"}) == set()

    def test_the_program_is_every_module_the_program_imports(self) -> None:
        """A module of the program outside ``PROGRAM`` would send every team's stack to the preview: safe,
        but no longer what the plans tell."""
        modules = project_modules(ROOT, (*PACKAGES, "benchmarks"))
        seen, todo = set(), ["__main__"]
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo += [loaded for found in imports_of(module, modules[module], ROOT, modules)
                         for loaded in found.loads]
        outside = sorted(str(modules[m].relative_to(ROOT)) for m in seen
                         if not str(modules[m].relative_to(ROOT)).startswith(change_reach.PROGRAM))
        assert outside == []
        assert len(seen) > 20

    def test_a_pull_request_previews_the_team_stacks_its_change_changes(self, tmp_path: Path) -> None:
        """The command, run in a repository whose ``HEAD`` is the base: each side planned by its own code."""
        root = repository_copy(tmp_path / "repository")
        environment = root / "stacks" / "Pulumi.prod.yaml"
        environment.write_text(environment.read_text().replace("config:\n", f"config:\n  {P}teamStacks: true\n", 1))
        (root / ORDERS.rstrip(":")).parent.mkdir(parents=True)
        (root / ORDERS.rstrip(":")).write_text(yaml.safe_dump(ORDERS_FILE))
        commit(root)
        kv = root / "components" / "kv.py"

        def previewed() -> str:
            done = subprocess.run([sys.executable, "-m", "platformctl", "team-stacks", "prod", "--changed-since",
                                   "HEAD"], cwd=root, capture_output=True, text=True, check=False)
            assert (done.returncode, done.stderr) == (0, "")
            return done.stdout

        kv.write_text(kv.read_text() + "# A comment declares nothing.\n")
        assert previewed() == ""
        kv.write_text(kv.read_text().replace("disable_read=True,", "disable_read=False,"))
        assert previewed() == "prod.orders\n"  # the only team with a KV secret of its own
        (root / "docs" / "index.md").write_text("changed\n")
        (root / "requirements.txt").write_text((root / "requirements.txt").read_text() + "\n")
        assert previewed() == "prod.orders\nprod.payments\n"


class TestResumingADeadRun:
    """``platformctl resume``'s core: which pending creates a killed ``up`` left, and which KV secret
    writes of it to delete so that the next ``up``'s first write (check-and-set 0) is accepted."""

    STARTED = "2026-12-07T02:10:00.123456789Z"

    def deployment(self, *operations: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
        return {"pending_operations": [
            {"type": kind, "resource": {"urn": f"urn:{type_token}", "type": type_token, "inputs": inputs,
                                        "created": self.STARTED}} for kind, type_token, inputs in operations]}

    def test_the_pending_kv_creates_and_how_many_creates_in_all(self) -> None:
        secrets, count = resume.pending_creates(self.deployment(
            ("creating", resume.KV_SECRET, {"mount": "secret", "name": "production/app-1"}),
            ("creating", "vault:index/policy:Policy", {"name": "app-app-1"}),
            ("updating", resume.KV_SECRET, {"mount": "secret", "name": "production/app-2"})))
        assert count == 2
        assert secrets == [resume.PendingSecret("secret", "production/app-1",
                                                datetime(2026, 12, 7, 2, 10, 0, 123456, tzinfo=UTC))]

    def test_nothing_pending(self) -> None:
        assert resume.pending_creates({"resources": []}) == ([], 0)

    @pytest.mark.parametrize(("metadata", "lost"), [
        ({"current_version": 1, "versions": {"1": {"created_time": "2026-12-07T02:10:01.5Z"}}}, True),
        # Written within the clocks' skew before the step began: still the step's.
        ({"current_version": 1, "versions": {"1": {"created_time": "2026-12-07T02:09:57Z"}}}, True),
        (None, False),  # the write never reached Vault: the next up makes it
        ({"current_version": 2, "versions": {"1": {"created_time": "2026-12-07T02:10:01Z"},
                                             "2": {"created_time": "2026-12-07T02:10:02Z"}}}, False),
        # Someone's secret from before the run: left for the next up to refuse with Vault's message.
        ({"current_version": 1, "versions": {"1": {"created_time": "2026-12-06T09:00:00Z"}}}, False),
    ])
    def test_a_lost_write_is_the_one_version_written_since_the_step_began(
            self, metadata: dict[str, Any] | None, lost: bool) -> None:
        (secret,), _ = resume.pending_creates(self.deployment(
            ("creating", resume.KV_SECRET, {"mount": "secret", "name": "production/app-1"})))
        assert resume.lost_write(secret, metadata) is lost

    def test_the_pending_creates_are_cleared_by_the_cli(self) -> None:
        assert resume.clear_arguments("prod.orders") == [
            "refresh", "--stack", "prod.orders", "--yes", "--non-interactive", "--skip-preview",
            "--clear-pending-creates"]

    def test_the_iac_token_may_read_and_delete_a_secrets_versions_but_not_read_its_values(self) -> None:
        (resume_calls,) = [call for call in iac_calls.calls([], commands=True) if call.needed_by == "platformctl resume"
                           and call.capabilities == ("delete",)]
        document = next(d for d in load_policy_files() if d.name == DEPLOY_POLICY)
        acl = vault_acl.Acl.of_texts({DEPLOY_POLICY: document.hcl})
        assert acl.capabilities("secret/metadata/production/app-1") >= {"read", "delete"}
        assert "read" not in acl.capabilities("secret/data/production/app-1")
        assert resume_calls.path == "secret/metadata/computed-path"


class TestGuardrails:
    """The pack checks a team's stack against its environment: the rules of its tier, the data plane its
    environment's stacks declare, and no stack-wide check that only the environment's stack can meet."""

    TAGS = {"owner": "platform-team", "environment": "prod"}

    def test_a_teams_stack_passes(self, monkeypatch: pytest.MonkeyPatch) -> None:
        split = edited("prod", SPLIT)
        spec = spec_of_config(split)
        monkeypatch.setattr(checks, "environment_plane",
                            lambda stack: data_plane(spec.kv, spec.database, spec.transit, spec.pki))
        assert run_pack(run(as_stack(split, "prod.orders")), self.TAGS) == []
        assert run_pack(run(as_stack(split, "prod.payments")), self.TAGS) == []
        assert run_pack(run(split), self.TAGS) == []

    def test_without_its_environments_plane_its_policies_reach_nothing_declared(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(checks, "environment_plane", lambda stack: None)
        violations = run_pack(run(as_stack(edited("prod", SPLIT), "prod.payments")), self.TAGS)
        assert {violation.policy for violation in violations} == {"acl-least-privilege"}
