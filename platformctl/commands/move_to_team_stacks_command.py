"""``platformctl move-to-team-stacks <stack>``: moves the state of an environment's applications from its own
stack to its teams' stacks, once its stack file states ``vault-platform:teamStacks`` and before its next
``pulumi up`` (README, "Scaling"), so that no Vault object is deleted, created or replaced
(:mod:`platformctl.core.team_move`).

The deploy runs it before the environment's ``up`` (``pulumi-up.yml``). It reads the environment's state
(``pulumi stack export``); when that holds only what the environment's stack declares, there is nothing
to move and it stops there. Otherwise it plans the environment both ways, writes the team stacks' files
(as ``team-stacks`` does), creates the team stacks the backend lacks, and moves with the CLI: each
team's resources in one ``pulumi state move``. Run again, it finishes what a run that stopped midway
left. Exit 0 when every application's resources are in its team's stack, 1 when the CLI fails, 2 when
the stack is refused."""

from __future__ import annotations

import argparse
import sys

from environment import PROJECT
from platformctl.adapters.engine import declare, declare_environment
from platformctl.adapters.pulumi_cli import PulumiFailed, checked, deployment, stack_names
from platformctl.adapters.stackfile import environment_spec_or_report, read_stack, stacks
from platformctl.core.team_move import (
    Move,
    MoveRefused,
    forget_arguments,
    left_over,
    move_arguments,
    stack_of,
    team_moves,
    team_steps,
)

from .team_stacks_command import write_stack_files

NAME = "move-to-team-stacks"
HELP = ("move the state of an environment's applications to their teams' stacks, once its stack file states "
        "teamStacks and before its next up")
TEAM_STACKS = f"{PROJECT}:teamStacks"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help=f"the environment's stack ({', '.join(stacks())})")
    parser.add_argument("--secrets-provider", metavar="URL",
                        help="the secrets provider of a team stack this creates (the deploys' awskms://... key); "
                             "by default the CLI's, the passphrase")


def run(args: argparse.Namespace) -> int:
    spec = environment_spec_or_report(args.stack)
    if spec is None:
        return 2
    if not spec.team_stacks:
        print(f"error: stack {spec.stack!r}, config key {TEAM_STACKS!r}: {spec.stack} declares its applications in "
              f"its own stack, so there is nothing to move to team stacks. Fix: set {TEAM_STACKS}: true in "
              f"stacks/Pulumi.{spec.stack}.yaml (and change nothing else in the same change), then run this again",
              file=sys.stderr)
        return 2
    stack = read_stack(spec.stack)
    try:
        state = deployment(spec.stack).get("resources", [])
        if not left_over(declare(stack.stack, stack.config, stack.secret_keys, stack.apps), state):
            print(f"{spec.stack}: nothing to move: its state holds only what its stack declares")
            return 0
        whole = declare(stack.stack, {**stack.config, TEAM_STACKS: False}, stack.secret_keys, stack.apps)
        split = declare_environment(stack.stack, stack.config, stack.secret_keys, stack.apps)
        if whole.error is not None or split.error is not None:
            raise MoveRefused(str(whole.error or split.error))
        moves = team_moves(whole, split)
        write_stack_files(spec.stack, sorted({stack_of(resource.urn) for resource in split.resources} - {spec.stack}))
        if not moves:
            print(f"{spec.stack}: nothing to move: no application has an object in Vault")
            return 0
        _move(spec.stack, [resource["urn"] for resource in state], moves, args.secrets_provider)
    except MoveRefused as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    except PulumiFailed as error:
        print(f"error: {spec.stack}: {error}", file=sys.stderr)
        return 1
    return 0


def _move(environment: str, state: list[str], moves: list[Move], secrets_provider: str | None) -> None:
    """Creates the team stacks the backend lacks, then moves to each what is left to move, printing it."""
    teams = {move.team_stack for move in moves}
    for missing in sorted(teams - {name.rpartition("/")[2] for name in stack_names()}):
        checked("stack", "init", missing, *(("--secrets-provider", secrets_provider) if secrets_provider else ()))
    states = {team: {r["urn"] for r in deployment(team).get("resources", [])} for team in teams}
    takers = {move.source: move.name for move in moves}
    for steps in team_steps(moves, state, states):
        for urn in steps.forget:
            checked(*forget_arguments(environment, urn))
        if steps.move:
            checked(*move_arguments(environment, steps))
        print(f"{environment} -> {steps.team_stack}: {len(steps.move) + len(steps.forget)} moved now, "
              f"{steps.moved} before")
        for urn in sorted([*steps.move, *steps.forget]):
            print(f"  {urn.rpartition('::')[2]} -> {takers[urn]}")
        if steps.absent:
            print(f"  in neither state, for the team's up to create: {', '.join(takers[urn] for urn in steps.absent)}")

