"""``platformctl move-to-team-stacks``'s core: which of an environment's resources each team's stack takes over
once the environment states teamStacks, at the URNs the CLI's engine gives them, what is left to do after a
move that stopped midway, and what it refuses. The move itself, under the real CLI against a real Vault:
``tests/e2e/test_team_stacks.py``."""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi
import pytest

import components.team_apps
from components.platform import moved_from_platform
from platformctl.__main__ import main
from platformctl.adapters import stackfile
from platformctl.adapters.engine import declare, declare_environment
from platformctl.core.declaration import Declaration, DeclaredResource
from platformctl.core.team_move import (
    Move,
    MoveRefused,
    TeamSteps,
    alias_urns,
    engine_urns,
    forget_arguments,
    left_over,
    move_arguments,
    team_moves,
    team_steps,
)
from tests.support import API_SERVICE, DELETE, ORDERS, ORDERS_FILE, edited, spec_of, spec_of_config

P = "vault-platform:"
ONE_STACK = {ORDERS: ORDERS_FILE, f"{P}teamStacks": False}
SPLIT = {ORDERS: ORDERS_FILE, f"{P}teamStacks": True}
PLATFORM = "urn:pulumi:prod::vault-platform::vault-platform:platform:VaultPlatform"
"""How the CLI's engine begins the URN of what VaultPlatform declares in prod."""


MOVED = [
    ("prod.orders", "$vault-platform:acl:AclPolicies$vault:index/policy:Policy::vault-policies-app-orders-api",
     "apps-orders-policies-app-orders-api"),
    ("prod.orders", "$vault-platform:auth:KubernetesAuth$vault:kubernetes/authBackendRole:AuthBackendRole::"
     "vault-kubernetes-auth-orders-api", "apps-orders-kubernetes-auth-orders-api"),
    ("prod.orders", "$vault-platform:database:DatabaseEngine$vault:database/secretBackendRole:"
     "SecretBackendRole::vault-database-orders-api-reader", "apps-orders-database-orders-api-reader"),
    ("prod.orders", "$vault-platform:kv:KvEngine$random:index/randomPassword:RandomPassword::"
     "vault-kv-orders-api-token", "apps-orders-kv-orders-api-token"),
    ("prod.orders", "$vault-platform:kv:KvEngine$vault:kv/secretV2:SecretV2::vault-kv-orders-api",
     "apps-orders-kv-orders-api"),
    ("prod.payments", "$vault-platform:acl:AclPolicies$vault:index/policy:Policy::"
     "vault-policies-app-api-service", "apps-payments-policies-app-api-service"),
    ("prod.payments", "$vault-platform:auth:KubernetesAuth$vault:kubernetes/authBackendRole:AuthBackendRole::"
     "vault-kubernetes-auth-api-service", "apps-payments-kubernetes-auth-api-service"),
]
"""What moves from the test stack prod with the orders team's application: (team stack, URN after
:data:`PLATFORM`, the team's resource that takes it over)."""


def plans() -> tuple[Declaration, Declaration]:
    """The test stack prod with the orders team's application, as one stack and split in team stacks."""
    whole, split = edited("prod", ONE_STACK), edited("prod", SPLIT)
    return (declare(whole.stack, whole.config, whole.secret_keys, whole.apps),
            declare_environment(split.stack, split.config, split.secret_keys, split.apps))


def taker(team_stack: str, name: str) -> str:
    """The URN of the policy ``apps-<name>`` TeamApps declares in ``team_stack``."""
    return (f"urn:pulumi:{team_stack}::vault-platform::vault-platform:apps:TeamApps$vault:index/policy:Policy::"
            f"apps-{name}")


def moved(moves: list[Move]) -> list[tuple[str, str, str]]:
    return [(move.team_stack, move.source.removeprefix(PLATFORM), move.name) for move in moves]


class TestWhatMoves:
    def test_each_applications_objects_go_to_its_teams_stack_and_nothing_else_moves(self) -> None:
        assert moved(team_moves(*plans())) == MOVED

    def test_a_moved_resource_becomes_a_child_of_the_team_stack(self) -> None:
        move = Move("prod.orders", f"{PLATFORM}$vault-platform:kv:KvEngine$vault:kv/secretV2:SecretV2::vault-kv-a",
                    "urn:pulumi:prod.orders::vault-platform::vault-platform:apps:TeamApps$vault:kv/secretV2:SecretV2::"
                    "apps-orders-kv-a")
        assert move.name == "apps-orders-kv-a"
        assert move.destination == "urn:pulumi:prod.orders::vault-platform::vault:kv/secretV2:SecretV2::vault-kv-a"

    def test_nothing_moves_from_an_environment_without_applications(self) -> None:
        whole = edited("prod", {f"{P}teamStacks": False, API_SERVICE: DELETE})
        split = edited("prod", {f"{P}teamStacks": True, API_SERVICE: DELETE})
        assert list(whole.apps.for_stack("prod")) == []
        assert team_moves(declare(whole.stack, whole.config, whole.secret_keys, whole.apps),
                          declare_environment(split.stack, split.config, split.secret_keys, split.apps)) == []

    def test_what_no_teams_stack_takes_over_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A KV secret of a team's stack without the alias to where the move leaves it: the environment's
        ``up`` would delete it, and the team's would write it again, refused under check-and-set."""
        def without_kv(kind: str | None, name: str) -> pulumi.Alias:
            return pulumi.Alias(name=f"vault-kv-{name}") if kind == "kv" else moved_from_platform(kind, name)

        monkeypatch.setattr(components.team_apps, "moved_from_platform", without_kv)
        with pytest.raises(MoveRefused) as refused:
            team_moves(*plans())
        assert str(refused.value) == (
            "stack 'prod': with teamStacks, its next up would delete what no team's stack would take over: "
            "vault-kv-orders-api (vault:kv/secretV2:SecretV2), vault-kv-orders-api-token "
            "(random:index/randomPassword:RandomPassword). Fix: declare each in its team's stack with an alias to "
            "where the move leaves it (components.platform.moved_from_platform), or keep it in the environment's "
            "stack")

    def test_what_two_teams_stacks_would_take_over_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def payments_policy(kind: str | None, name: str) -> pulumi.Alias:
            return moved_from_platform(kind, "app-api-service" if kind == "policies" else name)

        monkeypatch.setattr(components.team_apps, "moved_from_platform", payments_policy)
        with pytest.raises(MoveRefused) as refused:
            team_moves(*plans())
        assert str(refused.value) == (
            "stack 'prod': vault-policies-app-api-service would be taken over by both prod.orders's "
            "apps-orders-policies-app-orders-api and prod.payments's apps-payments-policies-app-api-service. Fix: "
            "give one of them alone an alias to it (components.platform.moved_from_platform)")


class TestUrnsAsTheEngineMakesThem:
    """The offline plan's mock engine prefixes a type with its parent's type alone; the CLI's engine with the
    parent's whole chain, and not with the stack's type."""

    def test_a_resource_under_two_components(self) -> None:
        whole, _ = plans()
        urns = engine_urns(whole)
        assert urns[whole.named("vault-kv-orders-api").urn] == (
            f"{PLATFORM}$vault-platform:kv:KvEngine$vault:kv/secretV2:SecretV2::vault-kv-orders-api")
        assert urns[whole.named("vault").urn] == f"{PLATFORM}::vault"
        assert urns[whole.named("vault-vault").urn] == f"{PLATFORM}$pulumi:providers:vault::vault-vault"

    @pytest.mark.parametrize(("alias", "urn"), [
        ('spec { name: "old" parentUrn: "urn:pulumi:prod.orders::p::a:b:C$d:e:F::f" }',
         "urn:pulumi:prod.orders::p::a:b:C$d:e:F$vault:index/policy:Policy::old"),
        ('spec { name: "old" parentUrn: "" }',  # no former parent: the current one
         "urn:pulumi:prod.orders::p::vault-platform:apps:TeamApps$vault:index/policy:Policy::old"),
        ('spec { type: "vault:index/policy:OldPolicy" noParent: true }',
         "urn:pulumi:prod.orders::p::vault:index/policy:OldPolicy::apps-orders-x"),
        ('spec { name: "old" stack: "prod" parentUrn: "urn:pulumi:prod.orders::p::pulumi:pulumi:Stack::p-prod" }',
         "urn:pulumi:prod::p::vault:index/policy:Policy::old"),
        ('urn: "urn:pulumi:prod::p::vault:index/policy:Policy::as-is"',
         "urn:pulumi:prod::p::vault:index/policy:Policy::as-is"),
    ])
    def test_an_alias_names_the_urn_the_engine_computes(self, alias: str, urn: str) -> None:
        resource = DeclaredResource(type="vault:index/policy:Policy", name="apps-orders-x", inputs={}, custom=True,
                                    urn="urn:pulumi:prod.orders::p::vault:index/policy:Policy::apps-orders-x",
                                    parent="", provider="", protect=False, aliases=(alias,))
        assert alias_urns(resource, "urn:pulumi:prod.orders::p::vault-platform:apps:TeamApps::apps-orders") == [urn]


class TestWhetherAnythingIsLeft:
    """A run compares the environment's state with its own stack's plan before it plans every team's."""

    def state(self, declaration: Declaration) -> list[dict[str, Any]]:
        """A state holding what ``declaration`` declares, and the default provider the CLI adds."""
        urns = engine_urns(declaration)
        return [{"urn": "urn:pulumi:prod::vault-platform::pulumi:providers:random::default_4_21_4",
                 "type": "pulumi:providers:random", "custom": True},
                *({"urn": urns[r.urn], "type": r.type, "custom": r.custom} for r in declaration.resources)]

    def test_nothing_once_everything_has_moved(self) -> None:
        split = edited("prod", SPLIT)
        platform = declare(split.stack, split.config, split.secret_keys, split.apps)
        assert left_over(platform, self.state(platform)) == []

    def test_what_the_environment_declared_for_its_applications(self) -> None:
        split = edited("prod", SPLIT)
        platform = declare(split.stack, split.config, split.secret_keys, split.apps)
        whole, _ = plans()
        assert sorted(urn.removeprefix(PLATFORM) for urn in left_over(platform, self.state(whole))) == sorted(
            source for _, source, _ in MOVED)


class TestWhatIsLeftToDo:
    """A move that stopped anywhere is finished by the next run, and a finished one is not repeated."""

    MOVES = [Move("prod.b", f"{PLATFORM}::b-1", taker("prod.b", "b-1")),
             Move("prod.a", f"{PLATFORM}::a-1", taker("prod.a", "a-1")),
             Move("prod.a", f"{PLATFORM}::a-2", taker("prod.a", "a-2")),
             Move("prod.b", f"{PLATFORM}::b-2", taker("prod.b", "b-2"))]

    def test_the_first_run_moves_everything(self) -> None:
        environment = [f"{PLATFORM}::{name}" for name in ("a-1", "b-1", "a-2", "b-2", "kept")]
        assert team_steps(self.MOVES, environment, {}) == [
            TeamSteps("prod.a", move=(f"{PLATFORM}::a-1", f"{PLATFORM}::a-2"), forget=(), moved=0, absent=()),
            TeamSteps("prod.b", move=(f"{PLATFORM}::b-1", f"{PLATFORM}::b-2"), forget=(), moved=0, absent=())]

    def test_after_one_teams_move_the_others_and_after_all_nothing(self) -> None:
        team_a = {move.destination for move in self.MOVES if move.team_stack == "prod.a"}
        assert team_steps(self.MOVES, [f"{PLATFORM}::b-1", f"{PLATFORM}::b-2"], {"prod.a": team_a}) == [
            TeamSteps("prod.a", move=(), forget=(), moved=2, absent=()),
            TeamSteps("prod.b", move=(f"{PLATFORM}::b-1", f"{PLATFORM}::b-2"), forget=(), moved=0, absent=())]
        everything = {"prod.a": team_a, "prod.b": {move.destination for move in self.MOVES[::3]}}
        assert [(steps.move, steps.forget, steps.moved) for steps in team_steps(self.MOVES, [], everything)] == [
            ((), (), 2), ((), (), 2)]

    def test_a_move_stopped_between_its_two_saves_is_dropped_from_the_environment_dependents_first(self) -> None:
        environment = [f"{PLATFORM}::a-1", f"{PLATFORM}::a-2"]
        team_a = {move.destination for move in self.MOVES if move.team_stack == "prod.a"}
        assert team_steps(self.MOVES[1:3], environment, {"prod.a": team_a}) == [
            TeamSteps("prod.a", move=(), forget=(f"{PLATFORM}::a-2", f"{PLATFORM}::a-1"), moved=0, absent=())]

    def test_what_a_teams_up_took_over_since_it_moved_is_moved(self) -> None:
        assert team_steps(self.MOVES[1:3], [], {"prod.a": {taker("prod.a", "a-1"), self.MOVES[2].destination}}) == [
            TeamSteps("prod.a", move=(), forget=(), moved=2, absent=())]

    def test_what_neither_state_holds_is_left_for_the_teams_up(self) -> None:
        assert team_steps(self.MOVES[1:2], [], {}) == [
            TeamSteps("prod.a", move=(), forget=(), moved=0, absent=(f"{PLATFORM}::a-1",))]

    def test_the_cli_commands(self) -> None:
        steps = TeamSteps("prod.a", move=(f"{PLATFORM}::a-1",), forget=(), moved=0, absent=())
        assert move_arguments("prod", steps) == ["state", "move", "--source", "prod", "--dest", "prod.a", "--yes",
                                                 f"{PLATFORM}::a-1"]
        assert forget_arguments("prod", f"{PLATFORM}::a-1") == ["state", "delete", "--stack", "prod", "--yes",
                                                                f"{PLATFORM}::a-1"]


class TestTheCommand:
    def test_an_environment_that_keeps_its_applications_is_refused(
            self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        monkeypatch.setattr(stackfile, "spec_or_report", lambda stack: spec_of("prod", ONE_STACK))
        assert main(["move-to-team-stacks", "prod"]) == 2
        assert capsys.readouterr().err == (
            "error: stack 'prod', config key 'vault-platform:teamStacks': prod declares its applications in its own "
            "stack, so there is nothing to move to team stacks. Fix: set vault-platform:teamStacks: true in "
            "stacks/Pulumi.prod.yaml (and change nothing else in the same change), then run this again\n")

    def test_a_teams_stack_is_refused(self, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
        team = spec_of_config(dataclasses.replace(edited("prod", SPLIT), stack="prod.orders"))
        monkeypatch.setattr(stackfile, "spec_or_report", lambda stack: team)
        assert main(["move-to-team-stacks", "prod.orders"]) == 2
        assert capsys.readouterr().err == "error: 'prod.orders' is a team's stack: name its environment, prod\n"
