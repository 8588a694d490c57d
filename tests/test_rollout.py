"""``platformctl rollout``: the decisions (a pure function of what is observed) over every small cluster
state, a whole rollout in every order, and the I/O layer's parsing and request building on the real
client objects (no cluster and no Vault here: nothing is sent)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client as k8s

from platformctl.__main__ import main
from platformctl.adapters.rollout_io import health_of, pod_state, raft_state_of, server_selector, vault_client
from platformctl.commands.rollout_command import _drive, ca_bundle
from platformctl.core.declaration import Declaration
from platformctl.core.rollout import (
    Decision,
    Done,
    Held,
    Observed,
    Pod,
    Progress,
    RaftServer,
    RaftState,
    Replace,
    Rules,
    StepDown,
    Stop,
    VaultHealth,
    Wait,
    behind,
    decide,
    plan,
    problems,
)
from tests.support import spec_of

OLD, NEW = "vault-5d8f7c9b4", "vault-7b6c5d4f8"
RULES = Rules(stack="prod", namespace="vault", timeout=600, auto_unseal=True)
SHAMIR = Rules(stack="dev", namespace="vault", timeout=600, auto_unseal=False)
ACTIVE = VaultHealth(initialized=True, sealed=False, standby=False)
STANDBY = VaultHealth(initialized=True, sealed=False, standby=True)
SEALED = VaultHealth(initialized=True, sealed=True, standby=False)
UNINITIALIZED = VaultHealth(initialized=False, sealed=True, standby=False)


def cluster(replicas: int, active: int = 0, late: set[int] | frozenset[int] = frozenset(),
            tolerance: int | None = None) -> Observed:
    """A healthy cluster: ``replicas`` pods, ``active`` the leader, the ``late`` ordinals on OLD."""
    pods = tuple(Pod(name=f"vault-{i}", uid=f"uid-{i}", revision=OLD if i in late else NEW, ready=True,
                     terminating=False, health=ACTIVE if i == active else STANDBY) for i in range(replicas))
    servers = tuple(RaftServer(f"vault-{i}", "leader" if i == active else "voter", True) for i in range(replicas))
    raft = RaftState(healthy=True, failure_tolerance=(replicas - 1) // 2 if tolerance is None else tolerance,
                     leader=f"vault-{active}", servers=servers)
    return Observed(replicas=replicas, update_revision=NEW, current_spec_observed=True, pods=pods, raft=raft)


def with_pod(observed: Observed, name: str, **changes: object) -> Observed:
    pods = tuple(dataclasses.replace(pod, **changes) if pod.name == name else pod  # type: ignore[arg-type]
                 for pod in observed.pods)
    return dataclasses.replace(observed, pods=pods)


def with_server(observed: Observed, name: str, **changes: object) -> Observed:
    assert observed.raft is not None
    servers = tuple(dataclasses.replace(s, **changes) if s.node_id == name else s  # type: ignore[arg-type]
                    for s in observed.raft.servers)
    return dataclasses.replace(observed, raft=dataclasses.replace(observed.raft, servers=servers))


def start(observed: Observed) -> Progress:
    return Progress(target_revision=observed.update_revision)


def subsets(n: int) -> list[frozenset[int]]:
    return [frozenset(c) for size in range(n + 1) for c in itertools.combinations(range(n), size)]


HEALTHY_STARTS = [(n, active, late) for n in (1, 3, 5) for active in range(n) for late in subsets(n)]


class TestHealthyClusterNextStep:
    @pytest.mark.parametrize(("replicas", "active", "late"), HEALTHY_STARTS)
    def test_standbys_highest_first_then_the_active_steps_down(self, replicas: int, active: int,
                                                                late: frozenset[int]) -> None:
        observed = cluster(replicas, active, late)
        decision = decide(observed, start(observed), RULES)
        standbys = sorted(late - {active}, reverse=True)
        if not late:
            assert decision == Done(f"prod: all {replicas} server pods run revision {NEW} and are healthy")
        elif replicas == 1:
            assert decision == Replace("vault-0", "uid-0", "sole")
        elif standbys:
            assert decision == Replace(f"vault-{standbys[0]}", f"uid-{standbys[0]}", "standby")
        else:
            assert decision == StepDown(f"vault-{active}")

    def test_behind_is_highest_ordinal_first_and_ignores_pods_on_the_update_revision(self) -> None:
        observed = cluster(5, 0, {0, 2, 4})
        assert [pod.name for pod in behind(observed)] == ["vault-4", "vault-2", "vault-0"]


class TestWholeRolloutInEveryOrder:
    """Drives :func:`decide` through a whole rollout on a model of the cluster's reaction (a deleted
    pod comes back from the update revision after one look; a stepped-down leader hands over to a
    chosen standby), for every cluster size, leader, set of late pods and successor."""

    CASES = [(n, active, late, successor) for n, active, late in HEALTHY_STARTS
             for successor in (range(n) if n > 1 else [0]) if successor != active or n == 1]

    @pytest.mark.parametrize(("replicas", "active", "late", "successor"), CASES)
    def test_one_pod_at_a_time_active_last_and_done(self, replicas: int, active: int, late: frozenset[int],
                                                    successor: int) -> None:
        observed = cluster(replicas, active, late)
        progress = start(observed)
        expected = plan(observed)
        taken: list[str] = []
        for _ in range(100):
            decision = decide(observed, progress, RULES)
            if isinstance(decision, Done):
                break
            assert not isinstance(decision, (Stop, Held)), decision
            if isinstance(decision, Replace):
                assert problems(observed) == []  # the cluster was whole before each delete
                assert decision.pod in {pod.name for pod in behind(observed)}
                leader = observed.raft.leader if observed.raft else ""
                assert decision.pod != leader or replicas == 1
                taken.append(f"replace {decision.pod}")
                progress = Progress(progress.target_revision, decision)
                # The first look after the delete still sees the old pod, then it comes back.
                assert isinstance(decide(observed, progress, RULES), Wait)
                observed = with_pod(observed, decision.pod, uid=f"new-{decision.pod}", revision=NEW)
            elif isinstance(decision, StepDown):
                assert behind(observed) == [pod for pod in observed.pods if pod.name == decision.pod]
                taken.append(f"step down {decision.pod}")
                progress = Progress(progress.target_revision, decision)
                assert decide(observed, progress, RULES) == Wait(f"{decision.pod} is still active after stepping down")
                observed = dataclasses.replace(cluster(replicas, successor, set()), pods=tuple(
                    dataclasses.replace(pod, revision=old.revision, uid=old.uid)
                    for pod, old in zip(cluster(replicas, successor).pods, observed.pods, strict=True)))
        else:
            pytest.fail("the rollout did not finish")
        assert behind(observed) == []
        assert [step.split(",")[0].split(" (")[0] for step in expected] == taken
        assert len(taken) == len(late) + (1 if active in late and replicas > 1 else 0)


POD_FAULTS: dict[str, dict[str, Any]] = {
    "sealed": {"health": SEALED, "ready": False},
    "not Ready": {"ready": False},
    "unreachable": {"health": None},
    "terminating": {"terminating": True},
}
RAFT_FAULTS: dict[str, Callable[[Any], Observed]] = {
    "not joined": lambda o: dataclasses.replace(o, raft=dataclasses.replace(o.raft, servers=tuple(
        s for s in o.raft.servers if s.node_id != "vault-1"))),
    "non-voter": lambda o: with_server(o, "vault-1", status="non-voter"),
    "unhealthy in raft": lambda o: with_server(o, "vault-1", healthy=False),
    "dead voter left behind": lambda o: dataclasses.replace(o, raft=dataclasses.replace(
        o.raft, healthy=False, servers=(*o.raft.servers, RaftServer("vault-3", "voter", False)))),
    "autopilot unhealthy": lambda o: dataclasses.replace(o, raft=dataclasses.replace(o.raft, healthy=False)),
    "autopilot unreadable": lambda o: dataclasses.replace(o, raft=None, raft_error="403 permission denied"),
    "leader elsewhere": lambda o: dataclasses.replace(o, raft=dataclasses.replace(o.raft, leader="vault-2")),
    "pod missing": lambda o: dataclasses.replace(o, pods=o.pods[:2]),
    "two active": lambda o: with_pod(o, "vault-1", health=ACTIVE),
}
PROBLEM = {
    "sealed": "vault-1 is sealed",
    "not Ready": "vault-1 is not Ready",
    "unreachable": "vault-1 does not answer sys/health",
    "terminating": "vault-1 is terminating",
    "not joined": "vault-1 has not joined Raft",
    "non-voter": "vault-1 is not a Raft voter yet",
    "unhealthy in raft": "autopilot reports vault-1 unhealthy",
    "dead voter left behind": "autopilot lists vault-3, which no pod runs (after a scale-down, dead-server "
                              "cleanup removes them after its threshold)",
    "autopilot unhealthy": "autopilot reports the cluster unhealthy",
    "autopilot unreadable": "autopilot's state could not be read: 403 permission denied",
    "leader elsewhere": "autopilot's leader is vault-2, not the active server vault-0",
    "pod missing": "2 of 3 server pods exist",
    "two active": "2 servers claim to be active (vault-0, vault-1)",
}


def faulty(name: str, late: set[int]) -> Observed:
    observed = cluster(3, 0, late)
    if name in POD_FAULTS:
        return with_pod(observed, "vault-1", **POD_FAULTS[name])
    edit: Callable[[Observed], Observed] = RAFT_FAULTS[name]
    return edit(observed)


class TestUnhealthy:
    @pytest.mark.parametrize("fault", PROBLEM)
    def test_each_fault_is_named(self, fault: str) -> None:
        assert problems(faulty(fault, set())) == [PROBLEM[fault]]

    @pytest.mark.parametrize("fault", PROBLEM)
    @pytest.mark.parametrize("late", [{2}, set()])
    def test_before_the_first_step_it_waits_then_stops_touching_nothing(self, fault: str, late: set[int]) -> None:
        # Right after `up`, a scale-up's pods may still be joining: nothing is touched meanwhile.
        observed = faulty(fault, late)
        assert decide(observed, Progress(NEW, None, 599.0), RULES) == Wait(PROBLEM[fault])
        assert decide(observed, Progress(NEW, None, 600.0), RULES) == Stop(
            f"prod: Vault did not become healthy within 600s, so no pod was replaced: {PROBLEM[fault]}")

    @pytest.mark.parametrize("fault", PROBLEM)
    @pytest.mark.parametrize(("waited", "expect"), [(0.0, Wait), (599.9, Wait), (600.0, Stop), (3600.0, Stop)])
    def test_after_a_step_it_waits_until_the_timeout_then_stops(self, fault: str, waited: float,
                                                                 expect: type) -> None:
        observed = faulty(fault, {2})
        step = Replace("vault-1", "uid-old-1", "standby")
        decision = decide(observed, Progress(NEW, step, waited), RULES)
        assert isinstance(decision, expect)
        if isinstance(decision, Stop):
            assert decision.reason == (f"prod: replacing vault-1 did not settle within 600s: {PROBLEM[fault]}. "
                                       "Stopped; nothing more was replaced. Fix it, then run "
                                       "`platformctl rollout prod` again")
        else:
            assert decision == Wait(PROBLEM[fault])


class TestPodThatDoesNotComeBack:
    STEP = Replace("vault-2", "uid-2", "standby")

    def test_still_the_old_pod_waits(self) -> None:
        observed = cluster(3, 0, {1, 2})
        assert decide(observed, Progress(NEW, self.STEP, 30), RULES) == Wait("vault-2 has not been recreated yet")

    def test_gone_waits(self) -> None:
        observed = dataclasses.replace(cluster(3, 0, {1}), pods=cluster(3, 0, {1}).pods[:2])
        decision = decide(observed, Progress(NEW, self.STEP, 30), RULES)
        assert decision == Wait("vault-2 has not been recreated yet")

    def test_timeout_stops_naming_the_pod(self) -> None:
        observed = with_pod(cluster(3, 0, {1}), "vault-2", uid="uid-new", ready=False, health=None)
        assert decide(observed, Progress(NEW, self.STEP, 600), RULES) == Stop(
            "prod: replacing vault-2 did not settle within 600s: vault-2 does not answer sys/health. Stopped; "
            "nothing more was replaced. Fix it, then run `platformctl rollout prod` again")

    def test_back_and_healthy_moves_on_to_the_next(self) -> None:
        observed = with_pod(cluster(3, 0, {1}), "vault-2", uid="uid-new")
        assert decide(observed, Progress(NEW, self.STEP, 30), RULES) == Replace("vault-1", "uid-1", "standby")

    def test_back_on_another_revision_is_reported(self) -> None:
        observed = with_pod(cluster(3, 0, {1, 2}), "vault-2", uid="uid-new")
        decision = decide(observed, Progress(NEW, self.STEP, 600), RULES)
        assert decision == Stop(f"prod: replacing vault-2 did not settle within 600s: vault-2 came back with "
                                f"revision {OLD}, not {NEW}. Stopped; nothing more was replaced. Fix it, then "
                                "run `platformctl rollout prod` again")


class TestSealed:
    def test_auto_unseal_waits_for_the_pod_to_unseal_itself(self) -> None:
        observed = with_pod(cluster(3, 0, {1}), "vault-2", uid="new", health=SEALED, ready=False)
        step = Replace("vault-2", "uid-2", "standby")
        assert decide(observed, Progress(NEW, step, 10), RULES) == Wait("vault-2 is sealed")

    def test_shamir_says_how_to_unseal(self) -> None:
        observed = with_pod(cluster(3, 0, {1}), "vault-2", uid="new", health=SEALED, ready=False)
        rules = dataclasses.replace(SHAMIR, unseal_by_hand=True)
        assert decide(observed, Progress(NEW, Replace("vault-2", "uid-2", "standby"), 10), rules) == Wait(
            "vault-2 is sealed: unseal it (`kubectl -n vault exec -ti vault-2 -- vault operator unseal`, once per "
            "key holder)")

    def test_shamir_without_key_holders_is_held_before_touching_anything(self) -> None:
        observed = cluster(3, 0, {1, 2})
        assert decide(observed, start(observed), SHAMIR) == Held(
            "dev: vault-2, vault-1 run an old revision, and this stack unseals with Shamir keys: a replaced pod "
            "stays sealed until its key holders unseal it. Run `platformctl rollout dev --unseal-by-hand` with "
            "them at hand")

    def test_shamir_with_nothing_behind_is_done(self) -> None:
        observed = cluster(3, 0)
        assert isinstance(decide(observed, start(observed), SHAMIR), Done)


class TestQuorum:
    @pytest.mark.parametrize(("replicas", "tolerance", "late", "expected"), [
        (3, 0, {2}, Stop("prod: replacing vault-2 would lose quorum: autopilot's failure tolerance is 0; "
                         "stopped, nothing was replaced")),
        (3, 0, {0}, Stop("prod: replacing vault-0 would lose quorum: autopilot's failure tolerance is 0; "
                         "stopped, nothing was replaced")),
        (5, 0, {4}, Stop("prod: replacing vault-4 would lose quorum: autopilot's failure tolerance is 0; "
                         "stopped, nothing was replaced")),
        (3, 1, {2}, Replace("vault-2", "uid-2", "standby")),
        (5, 2, {4}, Replace("vault-4", "uid-4", "standby")),
        (3, 1, {0}, StepDown("vault-0")),
        (1, 0, {0}, Replace("vault-0", "uid-0", "sole")),
    ])
    def test_a_step_that_would_lose_quorum_is_refused(self, replicas: int, tolerance: int, late: set[int],
                                                      expected: Decision) -> None:
        observed = cluster(replicas, 0, late, tolerance)
        assert decide(observed, start(observed), RULES) == expected


class TestRevisionMovesMidRollout:
    @pytest.mark.parametrize("step", [None, Replace("vault-2", "uid-2", "standby"), StepDown("vault-0")])
    @pytest.mark.parametrize("late", [set(), {1}, {0, 1, 2}])
    def test_stops_whatever_the_state(self, step: Replace | StepDown | None, late: set[int]) -> None:
        observed = cluster(3, 0, late)
        assert decide(observed, Progress("vault-0ld", step, 5), RULES) == Stop(
            f"prod: the StatefulSet's update revision moved from vault-0ld to {NEW} during the rollout (another "
            "deploy?); stopped. Run `platformctl rollout prod` again once that deploy has finished")

    @pytest.mark.parametrize(("waited", "expected"), [
        (1.0, Wait("the StatefulSet controller has not observed the latest spec yet")),
        (600.0, Stop("prod: the StatefulSet controller has not observed the latest spec within 600s; stopped. "
                     "Check the controller manager, then run `platformctl rollout prod` again")),
    ])
    def test_waits_for_the_controller_to_see_the_new_template(self, waited: float, expected: Decision) -> None:
        observed = dataclasses.replace(cluster(3, 0, {1}), current_spec_observed=False)
        assert decide(observed, Progress(NEW, None, waited), RULES) == expected


class TestSingleReplicaDev:
    DEV = dataclasses.replace(SHAMIR, unseal_by_hand=True)

    def test_the_sole_pod_is_replaced_without_a_step_down(self) -> None:
        observed = cluster(1, 0, {0}, tolerance=0)
        assert decide(observed, start(observed), self.DEV) == Replace("vault-0", "uid-0", "sole")
        assert plan(observed) == ["replace vault-0"]

    def test_then_waits_for_its_unseal(self) -> None:
        observed = with_pod(cluster(1, 0, set(), tolerance=0), "vault-0", uid="new", health=SEALED, ready=False)
        decision = decide(observed, Progress(NEW, Replace("vault-0", "uid-0", "sole"), 5), self.DEV)
        assert isinstance(decision, Wait)
        assert decision.reason.startswith("vault-0 is sealed: unseal it")

    def test_uninitialized_vault_has_nothing_to_roll_out(self) -> None:
        observed = with_pod(cluster(1, 0, {0}), "vault-0", health=UNINITIALIZED, ready=False)
        assert decide(observed, start(observed), self.DEV) == Done(
            "dev: Vault is not initialized yet; nothing to roll out before `vault operator init`")

    def test_held_without_key_holders(self) -> None:
        observed = cluster(1, 0, {0}, tolerance=0)
        assert isinstance(decide(observed, start(observed), SHAMIR), Held)


class TestStepDown:
    def test_leader_that_keeps_the_lock_times_out(self) -> None:
        observed = cluster(3, 0, {0})
        assert decide(observed, Progress(NEW, StepDown("vault-0"), 600), RULES) == Stop(
            "prod: stepping down vault-0 did not settle within 600s: vault-0 is still active after stepping "
            "down. Stopped; nothing more was replaced. Fix it, then run `platformctl rollout prod` again")

    def test_handed_over_replaces_the_old_leader_as_a_standby(self) -> None:
        observed = with_pod(with_pod(cluster(3, 1, {0}), "vault-0", health=STANDBY), "vault-1", health=ACTIVE)
        assert decide(observed, Progress(NEW, StepDown("vault-0"), 12), RULES) == Replace("vault-0", "uid-0", "standby")


CONDITIONS: dict[str, dict[str, Any]] = {"sealed": {"health": SEALED, "ready": False}, "not-ready": {"ready": False},
                                         "unreachable": {"health": None}, "terminating": {"terminating": True}}
STATES = ("ok", *CONDITIONS)


def enumerated() -> list[tuple[Observed, Progress]]:
    """Every 3-pod state: each pod in each of STATES, on either revision, any active pod, before the
    first step and right after each kind of step."""
    cases = []
    for active in range(3):
        for conditions in itertools.product(STATES, repeat=3):
            for late in subsets(3):
                observed = cluster(3, active, late)
                for index, condition in enumerate(conditions):
                    if condition != "ok":
                        observed = with_pod(observed, f"vault-{index}", **CONDITIONS[condition])
                for step in (None, Replace("vault-1", "uid-gone", "standby"), StepDown("vault-2")):
                    cases.append((observed, Progress(NEW, step, 1.0)))
    return cases


class TestInvariantsOverEveryState:
    """Properties over the whole enumerated state space (2,880 observations x 3 progress states)."""

    CASES = enumerated()

    def test_the_space_is_what_it_claims(self) -> None:
        assert len(self.CASES) == 3 * 5**3 * 8 * 3

    def test_acts_only_on_a_whole_cluster_and_only_on_late_pods(self) -> None:
        for observed, progress in self.CASES:
            decision = decide(observed, progress, RULES)
            if isinstance(decision, (Replace, StepDown)):
                assert problems(observed) == [], (observed, progress, decision)
                assert decision.pod in {pod.name for pod in behind(observed)}

    def test_never_deletes_the_active_server_of_a_cluster(self) -> None:
        for observed, progress in self.CASES:
            decision = decide(observed, progress, RULES)
            if isinstance(decision, Replace):
                pod = next(p for p in observed.pods if p.name == decision.pod)
                assert pod.health == STANDBY
                assert decision.role == "standby"

    def test_steps_down_only_when_no_standby_is_late(self) -> None:
        for observed, progress in self.CASES:
            decision = decide(observed, progress, RULES)
            if isinstance(decision, StepDown):
                assert [pod.name for pod in behind(observed)] == [decision.pod]

    def test_done_only_when_whole_and_current(self) -> None:
        for observed, progress in self.CASES:
            if isinstance(decide(observed, progress, RULES), Done):
                assert problems(observed) == []
                assert behind(observed) == []

    def test_an_unhealthy_cluster_is_waited_for_then_stops(self) -> None:
        for observed, progress in self.CASES:
            if problems(observed):
                assert isinstance(decide(observed, progress, RULES), Wait)
                late = dataclasses.replace(progress, waited=RULES.timeout)
                assert isinstance(decide(observed, late, RULES), Stop)


class TestDryRunPlan:
    def test_standbys_then_step_down_then_the_old_leader(self) -> None:
        assert plan(cluster(3, 1, {0, 1, 2})) == [
            "replace vault-2 (standby), then wait until it is Ready, unsealed and a healthy Raft voter",
            "replace vault-0 (standby), then wait until it is Ready, unsealed and a healthy Raft voter",
            "step down vault-1 (active), then wait until another server is active",
            "replace vault-1, then wait until it is Ready, unsealed and a healthy Raft voter",
        ]

    def test_nothing_behind_is_no_step(self) -> None:
        assert plan(cluster(5, 3)) == []


# --- I/O: parsing and request building on the real client objects; nothing is sent ----------------

# The shape of Vault's AutopilotState (physical/raft/raft_autopilot.go, json tags), as the HTTP API
# wraps a logical response in "data".
AUTOPILOT_STATE = {
    "request_id": "5c9a1b", "lease_id": "", "renewable": False, "lease_duration": 0, "wrap_info": None,
    "warnings": None, "auth": None,
    "data": {
        "healthy": False, "failure_tolerance": 1, "optimistic_failure_tolerance": 1, "leader": "vault-0",
        "voters": ["vault-0", "vault-1", "vault-2"],
        "servers": {
            "vault-0": {"id": "vault-0", "name": "vault-0", "address": "vault-0.vault-internal:8201",
                        "node_status": "alive", "last_contact": "0s", "last_term": 3, "last_index": 459,
                        "healthy": True, "stable_since": "2026-11-28T10:14:11Z", "status": "leader",
                        "version": "2.0.4", "node_type": "voter"},
            "vault-2": {"id": "vault-2", "name": "vault-2", "address": "vault-2.vault-internal:8201",
                        "node_status": "alive", "last_contact": "12.5s", "last_term": 3, "last_index": 201,
                        "healthy": False, "stable_since": "2026-11-28T10:14:25Z", "status": "voter",
                        "version": "2.0.4", "node_type": "voter"},
            "vault-1": {"id": "vault-1", "name": "vault-1", "address": "vault-1.vault-internal:8201",
                        "node_status": "alive", "last_contact": "516ms", "last_term": 3, "last_index": 459,
                        "healthy": True, "stable_since": "2026-11-28T10:14:19Z", "status": "non-voter",
                        "version": "2.0.4", "node_type": "voter"},
        },
    },
}


class TestParsing:
    def test_autopilot_state(self) -> None:
        assert raft_state_of(AUTOPILOT_STATE) == RaftState(
            healthy=False, failure_tolerance=1, leader="vault-0",
            servers=(RaftServer("vault-0", "leader", True), RaftServer("vault-1", "non-voter", True),
                     RaftServer("vault-2", "voter", False)))

    @pytest.mark.parametrize(("body", "expected"), [
        # Vault's API docs (/sys/health): 200 active, 429 standby, 503 sealed, 501 not initialized.
        ({"initialized": True, "sealed": False, "standby": False, "version": "2.0.4"}, ACTIVE),
        ({"initialized": True, "sealed": False, "standby": True, "version": "2.0.4"}, STANDBY),
        ({"initialized": True, "sealed": True, "standby": True}, VaultHealth(True, True, True)),
        ({"initialized": False, "sealed": True, "standby": True}, VaultHealth(False, True, True)),
        ({}, VaultHealth(initialized=False, sealed=True, standby=False)),
    ])
    def test_health(self, body: dict[str, object], expected: VaultHealth) -> None:
        assert health_of(body) == expected

    def test_pod_from_the_kubernetes_object(self) -> None:
        pod = k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(name="vault-2", uid="0b4e", labels={
                "controller-revision-hash": OLD, "statefulset.kubernetes.io/pod-name": "vault-2"}),
            status=k8s.V1PodStatus(pod_ip="10.1.2.3", conditions=[
                k8s.V1PodCondition(type="PodScheduled", status="True"),
                k8s.V1PodCondition(type="Ready", status="True")]))
        assert pod_state(pod, STANDBY) == Pod("vault-2", "0b4e", OLD, True, False, STANDBY)

    def test_a_pod_being_deleted_and_not_ready(self) -> None:
        pod = k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(name="vault-0", uid="9f", labels={},
                                      deletion_timestamp=datetime(2026, 11, 28, tzinfo=UTC)),
            status=k8s.V1PodStatus(conditions=[k8s.V1PodCondition(type="Ready", status="False")]))
        assert pod_state(pod, None) == Pod("vault-0", "9f", "", False, True, None)

    def test_selector_is_the_charts_server_match_labels(self) -> None:
        # templates/server-statefulset.yaml: spec.selector.matchLabels (chart name "vault").
        assert server_selector("vault") == (
            "app.kubernetes.io/name=vault,app.kubernetes.io/instance=vault,component=server")


class TestVaultClient:
    def test_tls_connects_to_the_pod_ip_and_checks_the_servers_name(self, tmp_path: Path) -> None:
        ca = tmp_path / "ca.crt"
        ca.write_text("")
        spec = spec_of("prod")
        vault = vault_client(spec.deployed, "vault-3", "10.1.2.3", str(ca), "s.token", timeout=7)
        assert vault.adapter.base_uri == "https://10.1.2.3:8200"
        assert (vault.adapter.token, vault.adapter._kwargs["timeout"], vault.adapter._kwargs["verify"]) == (
            "s.token", 7, str(ca))
        request = requests.Request("GET", "https://10.1.2.3:8200/v1/sys/health").prepare()
        pool = vault.session.get_adapter(request.url).get_connection_with_tls_context(request, verify=str(ca))
        connection = pool._new_conn()  # created, not connected
        assert (connection.host, connection.port) == ("10.1.2.3", 8200)
        # SNI and the certificate check use the name retry_join checks (leader_tls_servername).
        assert (connection.server_hostname, connection.assert_hostname, connection.ca_certs) == (
            "vault-3.vault-internal", "vault-3.vault-internal", str(ca))

    @pytest.mark.parametrize("stack", ["staging", "prod"])
    def test_the_servers_certificate_covers_that_name(self, stack: str, declared: dict[str, Declaration]) -> None:
        [certificate] = declared[stack].of_type("kubernetes:cert-manager.io/v1:Certificate")
        release = spec_of(stack).deployed.release_name
        assert f"*.{release}-internal" in certificate.inputs["spec"]["dnsNames"]

    def test_the_stacks_ca_file_from_the_projects_root_unless_one_is_given(
            self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.chdir(tmp_path)  # wherever the command runs
        monkeypatch.setenv("VAULT_CACERT", "/etc/ssl/vault-ca.pem")
        root = Path(__file__).resolve().parents[1]
        assert ca_bundle(spec_of("prod"), None) == str(root / "tests/stacks/ca/vault-ca.pem")
        assert ca_bundle(spec_of("prod"), "given.pem") == "given.pem"
        assert ca_bundle(spec_of("dev"), None) == "/etc/ssl/vault-ca.pem"  # the stack names none
        monkeypatch.delenv("VAULT_CACERT")
        assert ca_bundle(spec_of("dev"), None) is None

    def test_plain_http_in_dev_and_ipv6_pod_ips(self) -> None:
        vault = vault_client(spec_of("dev").deployed, "vault-0", "fd00::5", None, None)
        assert vault.adapter.base_uri == "http://[fd00::5]:8200"
        assert vault.adapter._kwargs["verify"] is True


class TestCommand:
    def test_unknown_stack(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["rollout", "nope"]) == 2
        assert capsys.readouterr().err.startswith("error: no stack 'nope'")

    def test_no_cluster_is_one_message(self, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        assert main(["rollout", "staging", "--dry-run"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: staging: ")
        assert err.count("\n") == 1


class ScriptedServers:
    """The loop's side of :class:`platformctl.adapters.rollout_io.ServerSet`: hands out prepared observations
    in turn and records what the loop asked for. It stands in for our own I/O layer, not for Vault."""

    def __init__(self, *observations: Observed) -> None:
        self.observations = list(observations)
        self.calls: list[Replace | StepDown] = []

    def observe(self) -> Observed:
        return self.observations.pop(0) if len(self.observations) > 1 else self.observations[0]

    def replace(self, step: Replace) -> None:
        self.calls.append(step)

    def step_down(self, step: StepDown) -> None:
        self.calls.append(step)


class TestLoop:
    @pytest.fixture(autouse=True)
    def no_sleep(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr("platformctl.commands.rollout_command.time.sleep", lambda seconds: None)

    def test_replaces_waits_and_finishes(self, capsys: pytest.CaptureFixture[str]) -> None:
        late = cluster(3, 0, {2})
        down = with_pod(late, "vault-2", terminating=True)
        back = with_pod(cluster(3, 0), "vault-2", uid="new-2")
        servers = ScriptedServers(late, late, down, back)
        assert _drive(servers, RULES, dry_run=False, poll=0) == 0
        assert servers.calls == [Replace("vault-2", "uid-2", "standby")]
        assert capsys.readouterr().out.splitlines() == [
            "prod: replacing vault-2 (standby)",
            "  waiting: vault-2 has not been recreated yet",
            f"prod: all 3 server pods run revision {NEW} and are healthy"]

    def test_dry_run_only_prints(self, capsys: pytest.CaptureFixture[str]) -> None:
        servers = ScriptedServers(with_pod(cluster(3, 1, {1, 2}), "vault-0", ready=False))
        assert _drive(servers, RULES, dry_run=True, poll=0) == 0
        assert servers.calls == []
        assert capsys.readouterr().out.splitlines() == [
            f"prod: update revision {NEW}; 3 steps:",
            "  1. replace vault-2 (standby), then wait until it is Ready, unsealed and a healthy Raft voter",
            "  2. step down vault-1 (active), then wait until another server is active",
            "  3. replace vault-1, then wait until it is Ready, unsealed and a healthy Raft voter",
            "prod: a rollout would stop now: vault-0 is not Ready"]

    @pytest.mark.parametrize(("rules", "observed", "code", "message"), [
        (RULES, cluster(3, 2), 0, f"prod: all 3 server pods run revision {NEW} and are healthy"),
        (SHAMIR, cluster(1, 0, {0}), 3, "warning: dev: vault-0 run an old revision"),
        (dataclasses.replace(RULES, timeout=0), with_pod(cluster(3, 0, {1}), "vault-1", health=SEALED), 1,
         "error: prod: Vault did not become healthy within 0s, so no pod was replaced: vault-1 is sealed"),
    ])
    def test_outcomes(self, rules: Rules, observed: Observed, code: int, message: str,
                      capsys: pytest.CaptureFixture[str]) -> None:
        servers = ScriptedServers(observed)
        assert _drive(servers, rules, dry_run=False, poll=0) == code
        assert servers.calls == []
        output = capsys.readouterr()
        assert (output.out + output.err).startswith(message)

    def test_a_revision_that_moves_mid_rollout_stops_after_one_step(self, capsys: pytest.CaptureFixture[str]) -> None:
        first = cluster(3, 0, {1, 2})
        moved = dataclasses.replace(with_pod(first, "vault-2", uid="new-2"), update_revision="vault-newer")
        servers = ScriptedServers(first, moved)
        assert _drive(servers, RULES, dry_run=False, poll=0) == 1
        assert servers.calls == [Replace("vault-2", "uid-2", "standby")]
        assert "update revision moved from" in capsys.readouterr().err
