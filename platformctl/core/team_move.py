"""Which resources an environment's stack hands to its teams' stacks once it states teamStacks: the pure
core of ``platformctl move-to-team-stacks``.

Before, the environment's stack declared each application's objects under VaultPlatform's components;
once it states teamStacks, the team's stack declares them (``TeamApps``) and the environment's no
longer does. Left alone, the environment's next ``up`` would delete them from Vault and the team's
would create them again: a KV secret's first write under check-and-set is refused (Vault keeps a
deleted secret's versions), and its generated values would be new. So their state moves first, with
the CLI's ``pulumi state move``, and the team's program takes each over by an alias
(:func:`components.platform.moved_from_platform`): nothing is deleted, created or replaced.

The move is read from two offline plans of the environment: with teamStacks off (the layout its state
holds) and on (its stack and each team's). What the environment's stack stops declaring goes to the
team stack whose resource names it in an alias, at the URN the move gives it there; a resource that
no team's stack takes over is refused, since its environment's ``up`` would delete it.

The offline plans name resources by the mock engine's URNs, whose type holds the parent's type alone;
the CLI's engine prefixes a type with its parent's whole chain, the stack's aside (:func:`engine_urns`)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import text_format
from pulumi.runtime.proto import alias_pb2

from .declaration import Declaration, DeclaredResource

ROOT_STACK = "pulumi:pulumi:Stack"
PROVIDERS = "pulumi:providers:"


class MoveRefused(ValueError):
    """The environment's state cannot move to its teams' stacks without losing something; the message
    names the stack, the problem and the fix."""


@dataclass(frozen=True)
class Move:
    """One resource of the environment's stack that a team's stack takes over."""

    team_stack: str
    """The team's stack (``prod.orders``)."""
    source: str
    """Its URN in the environment's stack."""
    taker: str
    """The URN of the team's resource that takes it over, in the team's stack."""

    @property
    def destination(self) -> str:
        """Its URN once moved: its parent stays, so the move makes it a child of the team stack itself."""
        return moved_urn(self.source, self.team_stack)

    @property
    def name(self) -> str:
        """The name of the team's resource that takes it over."""
        return self.taker.rpartition("::")[2]


@dataclass(frozen=True)
class TeamSteps:
    """What is left to do for one team's stack, given both states."""

    team_stack: str
    move: tuple[str, ...]
    """URNs in the environment's state alone: ``pulumi state move`` takes them to the team's."""
    forget: tuple[str, ...]
    """URNs in both states, dependents first: a move stopped between its two saves (the CLI saves the
    destination first) left them behind in the environment's, from which ``pulumi state delete`` drops them."""
    moved: int
    """How many are in the team's state alone, where they were moved (or its ``up`` since took them over)."""
    absent: tuple[str, ...]
    """URNs in neither state: never applied, or deleted by an ``up`` of the environment's stack that ran
    before the move; the team's ``up`` creates them."""


def stack_of(urn: str) -> str:
    return _stack_and_project(urn)[0]


def moved_urn(urn: str, stack: str) -> str:
    """The URN ``pulumi state move`` gives the resource ``urn`` in ``stack`` when its parent stays behind: the
    stack renamed, and the stack as its parent, so its type is no longer prefixed with its former parents'
    (pulumi/pulumi pkg/cmd/pulumi/state/state_move.go, ``rewriteURNs``, since its pull request 21953)."""
    _, project = _stack_and_project(urn)
    qualified_type, name = urn.rsplit("::", 2)[1:]
    return f"urn:pulumi:{stack}::{project}::{qualified_type.rpartition('$')[2]}::{name}"


def engine_urns(declaration: Declaration) -> dict[str, str]:
    """Each resource's URN as the CLI's engine makes it, by its URN in the offline plan: its type prefixed
    with its parent's type chain, but for the stack's own children (pulumi/pulumi
    pkg/resource/deploy/deployment.go, ``generateURN``)."""
    by_urn = {resource.urn: resource for resource in declaration.resources}
    qualified: dict[str, str] = {}

    def qualified_type(resource: DeclaredResource) -> str:
        if resource.urn not in qualified:
            parent = by_urn.get(resource.parent)  # none: the stack, which the plan does not record
            qualified[resource.urn] = resource.type if parent is None else f"{qualified_type(parent)}${resource.type}"
        return qualified[resource.urn]

    return {resource.urn: f"{_prefix(resource.urn)}{qualified_type(resource)}::{resource.name}"
            for resource in declaration.resources}


def alias_urns(resource: DeclaredResource, parent: str) -> list[str]:
    """The URNs ``resource``'s aliases name, as the engine computes them (pulumi/pulumi
    pkg/resource/deploy/step_generator.go, ``collapseAliasToUrn``, and sdk/go/common/resource/alias.go,
    ``CreateURN``); ``parent``, the engine's URN of its parent ("" for the stack's children)."""
    urns = []
    for text in resource.aliases:
        alias = text_format.Parse(text, alias_pb2.Alias())
        if alias.WhichOneof("alias") == "urn":
            urns.append(alias.urn)
            continue
        spec = alias.spec
        former_parent = "" if spec.noParent else spec.parentUrn or parent
        if former_parent and _qualified_type(former_parent) == ROOT_STACK:
            former_parent = ""
        if former_parent:
            prefix = f"{former_parent.rpartition('::')[0]}$"
        else:
            stack, project = _stack_and_project(resource.urn)
            prefix = f"urn:pulumi:{spec.stack or stack}::{spec.project or project}::"
        urns.append(f"{prefix}{spec.type or resource.type}::{spec.name or resource.name}")
    return urns


def team_moves(whole: Declaration, split: Declaration) -> list[Move]:
    """What moves from the environment's stack to its teams', by team stack and URN:
    ``whole`` is the plan of the environment's stack with teamStacks off, ``split`` the plan of its stack
    and each team's with it on (:func:`platformctl.adapters.engine.declare_environment`)."""
    environment = whole.stack
    split_urns = engine_urns(split)
    kept = {split_urns[r.urn] for r in split.resources if stack_of(r.urn) == environment}
    whole_urns = engine_urns(whole)
    dropped = {whole_urns[r.urn]: r for r in whole.resources if r.custom and whole_urns[r.urn] not in kept}
    by_urn = {resource.urn: resource for resource in split.resources}
    claims: dict[str, Move] = {}
    moved_to: dict[str, dict[str, str]] = {}  # by team stack: the URN the move gives there -> the source's
    for resource in split.resources:
        team = stack_of(resource.urn)
        if team == environment:
            continue
        if team not in moved_to:
            moved_to[team] = {moved_urn(urn, team): urn for urn in dropped}
        parent = split_urns[resource.parent] if resource.parent in by_urn else ""
        for urn in alias_urns(resource, parent):
            source = moved_to[team].get(urn)
            if source is None:
                continue  # a former name in the team's own stack, or the provider the move copies
            if source in claims:
                raise MoveRefused(
                    f"stack {environment!r}: {dropped[source].name} would be taken over by both "
                    f"{claims[source].team_stack}'s {claims[source].name} and {team}'s {resource.name}. Fix: "
                    "give one of them alone an alias to it (components.platform.moved_from_platform)")
            claims[source] = Move(team, source, split_urns[resource.urn])
    unclaimed = sorted(f"{r.name} ({r.type})" for urn, r in dropped.items() if urn not in claims)
    if unclaimed:
        raise MoveRefused(
            f"stack {environment!r}: with teamStacks, its next up would delete what no team's stack would take "
            f"over: {', '.join(unclaimed)}. Fix: declare each in its team's stack with an alias to where the move "
            "leaves it (components.platform.moved_from_platform), or keep it in the environment's stack")
    return sorted(claims.values(), key=lambda move: (move.team_stack, move.source))


def left_over(environment: Declaration, state: Iterable[Mapping[str, Any]]) -> list[str]:
    """The URNs of what the environment's state (``pulumi stack export``'s resources) holds and its stack,
    stating teamStacks, no longer declares: what is left to move, or what its next ``up`` deletes. None
    once everything has moved, which spares a run with nothing to do the plans of every team's stack.
    Providers aside: the CLI adds default ones, and copies (never moves) the others."""
    declared = set(engine_urns(environment).values())
    return [resource["urn"] for resource in state if resource.get("custom") and resource["urn"] not in declared
            and not str(resource["type"]).startswith(PROVIDERS)]


def team_steps(moves: Sequence[Move], environment_state: Sequence[str],
               team_states: Mapping[str, Collection[str]]) -> list[TeamSteps]:
    """What is left to do for each team's stack with moves, sorted, given the URNs of the environment's
    state (``pulumi stack export``, in its order) and those of each team's (empty for a stack not yet
    created): a move interrupted at any point is finished by running it again."""
    in_environment = set(environment_state)
    order = {urn: index for index, urn in enumerate(environment_state)}
    steps = []
    for team in sorted({move.team_stack for move in moves}):
        held = team_states.get(team, ())
        mine = [(move, move.source in in_environment, move.destination in held or move.taker in held)
                for move in moves if move.team_stack == team]
        forget = [move.source for move, in_environment_state, in_team_state in mine
                  if in_environment_state and in_team_state]
        steps.append(TeamSteps(
            team_stack=team,
            move=tuple(move.source for move, in_environment_state, in_team_state in mine
                       if in_environment_state and not in_team_state),
            forget=tuple(sorted(forget, key=order.__getitem__, reverse=True)),
            moved=sum(not in_environment_state and in_team_state for _, in_environment_state, in_team_state in mine),
            absent=tuple(move.source for move, in_environment_state, in_team_state in mine
                         if not in_environment_state and not in_team_state)))
    return steps


def move_arguments(environment: str, steps: TeamSteps) -> list[str]:
    """The ``pulumi state move`` of what is left to move to ``steps``'s team stack."""
    return ["state", "move", "--source", environment, "--dest", steps.team_stack, "--yes", *steps.move]


def forget_arguments(environment: str, urn: str) -> list[str]:
    """The ``pulumi state delete`` that drops a resource moved already from the environment's state."""
    return ["state", "delete", "--stack", environment, "--yes", urn]


def _stack_and_project(urn: str) -> tuple[str, str]:
    stack, project = urn.removeprefix("urn:pulumi:").split("::")[:2]
    return stack, project


def _prefix(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::``"""
    stack, project = _stack_and_project(urn)
    return f"urn:pulumi:{stack}::{project}::"


def _qualified_type(urn: str) -> str:
    return urn.rsplit("::", 2)[-2]
