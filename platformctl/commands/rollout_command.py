"""``platformctl rollout <stack> [--dry-run]``: after ``pulumi up``, replaces the Vault server pods that
run an old revision of the chart's ``OnDelete`` StatefulSet, standbys one at a time, the active node
last after stepping it down, each only once the cluster is healthy again (see
:mod:`platformctl.core.rollout`). Needs the stack's cluster in the kubeconfig (``KUBECONFIG``), a Vault
token in ``VAULT_TOKEN`` that may read ``sys/storage/raft/autopilot/state`` and ``sudo`` on
``sys/step-down``, and a route to the pod IPs.

Exit 0 when every pod runs the update revision and the cluster is healthy (or Vault is not initialized
yet), 1 when it stopped (nothing more is touched), 2 when the stack cannot be read or its Vault is external
(no server of it is this stack's), 3 when pods are behind but the stack unseals by hand (run again with
``--unseal-by-hand``)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Protocol

from environment import EnvironmentSpec, project_file
from platformctl.adapters.rollout_io import ApiException, ConfigException, ServerSet, VaultError, kubernetes_api
from platformctl.adapters.stackfile import external_refusal, spec_or_report, stacks
from platformctl.core.rollout import (
    Done,
    Held,
    Observed,
    Progress,
    Replace,
    Rules,
    StepDown,
    Stop,
    Wait,
    decide,
    plan,
    problems,
)

NAME = "rollout"
HELP = ("replace the Vault server pods behind the StatefulSet's update revision: standbys one at a time, "
        "then the active node after a step-down")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help=f"stack name ({', '.join(stacks())})")
    parser.add_argument("--dry-run", action="store_true", help="print the steps, change nothing")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds the cluster may take to be healthy, before the first step and after each, "
                             "before the rollout stops (default 900: longer than prod's dead-server threshold)")
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between looks (default 5)")
    parser.add_argument("--unseal-by-hand", action="store_true",
                        help="for a stack without auto-unseal: replace pods anyway, and wait for the key "
                             "holders to unseal each one")
    parser.add_argument("--ca-cert", help="CA bundle to verify the servers' certificates (default: the stack's "
                                          "vault:caCertFile, then VAULT_CACERT)")


def run(args: argparse.Namespace) -> int:
    spec = spec_or_report(args.stack)
    if spec is None:
        return 2
    if spec.cluster is None:
        print(external_refusal(spec.stack, "its servers are rolled by its operator"), file=sys.stderr)
        return 2
    ca_cert = ca_bundle(spec, args.ca_cert)
    rules = Rules(stack=spec.stack, namespace=spec.cluster.namespace, timeout=args.timeout,
                  auto_unseal=spec.cluster.auto_unseal is not None, unseal_by_hand=args.unseal_by_hand)
    try:
        servers = ServerSet(spec.cluster, kubernetes_api(), ca_cert, os.environ.get("VAULT_TOKEN"))
        return _drive(servers, rules, args.dry_run, args.poll)
    except (ApiException, ConfigException, VaultError, OSError) as error:
        print(f"error: {spec.stack}: {error}. Stopped; nothing more was replaced", file=sys.stderr)
        return 1


def ca_bundle(spec: EnvironmentSpec, given: str | None) -> str | None:
    """What verifies the servers' certificates: ``--ca-cert``, else the stack's ``vault:caCertFile`` (the
    CA of the repository the provider uses, found from the project's root wherever this runs), else
    ``VAULT_CACERT``; ``None`` for the system's trust store."""
    stack_ca = spec.vault.ca_cert_file if spec.vault is not None else None
    return given or (str(project_file(stack_ca)) if stack_ca else None) or os.environ.get("VAULT_CACERT")


class Servers(Protocol):
    """What the loop needs of :class:`ServerSet`."""

    def observe(self) -> Observed: ...

    def replace(self, step: Replace) -> None: ...

    def step_down(self, step: StepDown) -> None: ...


def _drive(servers: Servers, rules: Rules, dry_run: bool, poll: float) -> int:
    observed = servers.observe()
    progress = Progress(target_revision=observed.update_revision)
    if dry_run:
        steps = plan(observed)
        print(f"{rules.stack}: update revision {observed.update_revision}; "
              + (f"{len(steps)} step{'s' if len(steps) > 1 else ''}:" if steps else "no pod is behind"))
        for number, step in enumerate(steps, 1):
            print(f"  {number}. {step}")
        found = problems(observed)
        if found:
            print(f"{rules.stack}: a rollout would stop now: {'; '.join(found)}")
        return 0
    started = time.monotonic()
    last_wait = ""
    while True:
        decision = decide(observed, progress, rules)
        if isinstance(decision, Done):
            print(decision.message)
            return 0
        if isinstance(decision, Stop):
            print(f"error: {decision.reason}", file=sys.stderr)
            return 1
        if isinstance(decision, Held):
            print(f"warning: {decision.reason}", file=sys.stderr)
            return 3
        if isinstance(decision, Wait):
            if decision.reason != last_wait:
                print(f"  waiting: {decision.reason}")
                last_wait = decision.reason
            time.sleep(poll)
        else:
            if isinstance(decision, Replace):
                print(f"{rules.stack}: replacing {decision.pod} ({decision.role})")
                servers.replace(decision)
            elif isinstance(decision, StepDown):
                print(f"{rules.stack}: stepping down {decision.pod} (active)")
                servers.step_down(decision)
            started = time.monotonic()
            progress = Progress(progress.target_revision, decision)
            last_wait = ""
        observed = servers.observe()
        progress = Progress(progress.target_revision, progress.last_step, time.monotonic() - started)
