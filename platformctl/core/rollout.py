"""Rollout of the chart's ``OnDelete`` server StatefulSet: what to do next, from what is observed.

The vault-helm chart keeps ``server.updateStrategyType: OnDelete`` (values.yaml; the StatefulSet's
``updateStrategy.type`` in templates/server-statefulset.yaml): a new chart version, image or server
config changes the pod template and moves the StatefulSet's ``status.updateRevision``, but no pod
restarts until it is deleted, and the controller then recreates it from the update revision. Each
pod carries the revision it was created from in its ``controller-revision-hash`` label.

:func:`decide` is the whole policy, a pure function of one observation and of what the rollout has
done so far: replace the standbys one at a time, each only once the cluster is healthy again, then
step the active node down and replace it last. :mod:`platformctl.adapters.rollout_io` observes and acts;
:mod:`platformctl.commands.rollout_command` loops between the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

RaftStatus = Literal["leader", "voter", "non-voter"]
"""A server's ``status`` in autopilot's state (Vault ``physical/raft/raft_autopilot.go``)."""


@dataclass(frozen=True)
class VaultHealth:
    """What one server answers on ``GET /v1/sys/health`` (the body is sent with any status code)."""

    initialized: bool
    """``initialized``: ``vault operator init`` has run."""
    sealed: bool
    """``sealed``: the server cannot serve until it is unsealed."""
    standby: bool
    """``standby``: another server is active; ``False`` on the active node (and on a sealed one)."""


@dataclass(frozen=True)
class Pod:
    """One server pod of the StatefulSet."""

    name: str
    """Pod name, ``<release>-<ordinal>``; also its Raft node id (the chart sets ``VAULT_RAFT_NODE_ID``
    from ``metadata.name`` with ``server.ha.raft.setNodeId``)."""
    uid: str
    """``metadata.uid``: a recreated pod has a new one."""
    revision: str
    """Its ``controller-revision-hash`` label: the StatefulSet revision it was created from."""
    ready: bool
    """Its ``Ready`` condition (the chart's readiness probe passes only when Vault is unsealed)."""
    terminating: bool
    """``metadata.deletionTimestamp`` is set."""
    health: VaultHealth | None
    """Its ``sys/health``, or ``None`` when it did not answer."""


@dataclass(frozen=True)
class RaftServer:
    """One server in autopilot's state (``GET /v1/sys/storage/raft/autopilot/state``, ``servers``)."""

    node_id: str
    """``id``: the Raft node id."""
    status: RaftStatus
    """``status``: leader, voter or non-voter."""
    healthy: bool
    """``healthy``: in contact with the leader and not too far behind its log."""


@dataclass(frozen=True)
class RaftState:
    """Autopilot's view of the Raft cluster, as the active node reports it."""

    healthy: bool
    """``healthy``: every server is healthy."""
    failure_tolerance: int
    """``failure_tolerance``: how many voters may fail without losing quorum."""
    leader: str
    """``leader``: node id of the leader."""
    servers: tuple[RaftServer, ...]
    """``servers``, sorted by node id."""


@dataclass(frozen=True)
class Observed:
    """One look at the StatefulSet, its pods, each server's health and autopilot's state."""

    replicas: int
    """``spec.replicas``."""
    update_revision: str
    """``status.updateRevision``: the revision a recreated pod gets."""
    current_spec_observed: bool
    """``status.observedGeneration`` has caught up with ``metadata.generation``; until then the
    update revision may not reflect the latest template yet."""
    pods: tuple[Pod, ...]
    """The server pods, sorted by ordinal."""
    raft: RaftState | None
    """Autopilot's state, or ``None`` when it could not be read (no active node, no token)."""
    raft_error: str = ""
    """Why autopilot's state could not be read, when a request for it failed."""


@dataclass(frozen=True)
class Replace:
    """Delete a pod so that the controller recreates it from the update revision."""

    pod: str
    """Pod name."""
    uid: str
    """The uid it is deleted with (a precondition: a pod recreated meanwhile is never deleted)."""
    role: Literal["standby", "active", "sole"]
    """``sole`` is the only server of a single-replica stack: replacing it is an outage."""


@dataclass(frozen=True)
class StepDown:
    """``PUT /v1/sys/step-down`` on the active node, so that a replaced standby takes over."""

    pod: str
    """The active pod."""


Step = Replace | StepDown


@dataclass(frozen=True)
class Wait:
    """Nothing to do until the cluster settles."""

    reason: str
    """What is awaited."""


@dataclass(frozen=True)
class Done:
    """Every pod runs the update revision and the cluster is healthy."""

    message: str
    """What was found."""


@dataclass(frozen=True)
class Stop:
    """Something is wrong: touch nothing more."""

    reason: str
    """What, where, and what to do about it."""


@dataclass(frozen=True)
class Held:
    """Pods are behind, but replacing them needs a person (Shamir unseal keys)."""

    reason: str
    """Which pods and how to go on."""


Decision = Replace | StepDown | Wait | Done | Stop | Held


@dataclass(frozen=True)
class Progress:
    """What the rollout has done so far."""

    target_revision: str
    """The update revision when the rollout started; a change means another deploy is under way."""
    last_step: Step | None = None
    """The last step taken, ``None`` before the first."""
    waited: float = 0.0
    """Seconds since the last step (since the start before the first)."""


@dataclass(frozen=True)
class Rules:
    """How a stack's rollout may proceed."""

    stack: str
    """Stack name, for the messages."""
    namespace: str
    """Namespace of the pods, for the commands in the messages."""
    timeout: float
    """Seconds a step may take to settle (a pod to come back Ready, unsealed and healthy in Raft)."""
    auto_unseal: bool
    """The servers unseal themselves (KMS); without it a replaced pod stays sealed until unsealed."""
    unseal_by_hand: bool = False
    """Without auto-unseal: the key holders are at hand to unseal each replaced pod."""


def ordinal(pod: str) -> int:
    """The StatefulSet ordinal at the end of a pod's name (``vault-2`` -> 2)."""
    match = re.search(r"-(\d+)$", pod)
    return int(match.group(1)) if match else -1


def behind(observed: Observed) -> list[Pod]:
    """Pods not created from the update revision, highest ordinal first (the order the StatefulSet
    controller itself rolls in)."""
    return sorted((pod for pod in observed.pods if pod.revision != observed.update_revision),
                  key=lambda pod: -ordinal(pod.name))


def active_pods(observed: Observed) -> list[Pod]:
    """Pods whose Vault says it is unsealed and not a standby."""
    return [pod for pod in observed.pods
            if pod.health is not None and pod.health.initialized and not pod.health.sealed
            and not pod.health.standby]


def problems(observed: Observed) -> list[str]:
    """Why the cluster is not healthy; empty when every pod is Ready, unsealed and a healthy Raft voter,
    exactly one is active and autopilot's leader, and autopilot knows no other server."""
    found: list[str] = []
    if len(observed.pods) != observed.replicas:
        found.append(f"{len(observed.pods)} of {observed.replicas} server pods exist")
    for pod in observed.pods:
        health = pod.health
        if pod.terminating:
            found.append(f"{pod.name} is terminating")
        elif health is None:
            found.append(f"{pod.name} does not answer sys/health")
        elif not health.initialized:
            found.append(f"{pod.name} is not initialized")
        elif health.sealed:
            found.append(f"{pod.name} is sealed")
        elif not pod.ready:
            found.append(f"{pod.name} is not Ready")
    active = active_pods(observed)
    if len(active) != 1:
        found.append("no server is active" if not active else
                     f"{len(active)} servers claim to be active ({', '.join(p.name for p in active)})")
    raft = observed.raft
    if raft is None:
        reason = f": {observed.raft_error}" if observed.raft_error else ""
        found.append(f"autopilot's state could not be read{reason}")
        return found
    servers = {server.node_id: server for server in raft.servers}
    if len(active) == 1 and raft.leader != active[0].name:
        found.append(f"autopilot's leader is {raft.leader or 'none'}, not the active server {active[0].name}")
    for pod in observed.pods:
        server = servers.get(pod.name)
        if server is None:
            found.append(f"{pod.name} has not joined Raft")
        elif server.status == "non-voter":
            found.append(f"{pod.name} is not a Raft voter yet")
        elif not server.healthy:
            found.append(f"autopilot reports {pod.name} unhealthy")
    # A server of an ordinal the StatefulSet still has is a missing pod, reported above.
    strangers = sorted(node for node in set(servers) - {pod.name for pod in observed.pods}
                       if not 0 <= ordinal(node) < observed.replicas)
    if strangers:
        found.append(f"autopilot lists {', '.join(strangers)}, which no pod runs (after a scale-down, "
                     "dead-server cleanup removes them after its threshold)")
    if not raft.healthy and not found:
        found.append("autopilot reports the cluster unhealthy")
    return found


def decide(observed: Observed, progress: Progress, rules: Rules) -> Decision:
    """The next step of the rollout, or why there is none."""
    stack = rules.stack
    if observed.update_revision != progress.target_revision:
        return Stop(f"{stack}: the StatefulSet's update revision moved from {progress.target_revision} to "
                    f"{observed.update_revision} during the rollout (another deploy?); stopped. Run "
                    f"`platformctl rollout {stack}` again once that deploy has finished")
    step = progress.last_step
    if not observed.current_spec_observed:
        if progress.waited >= rules.timeout:
            return Stop(f"{stack}: the StatefulSet controller has not observed the latest spec within "
                        f"{rules.timeout:.0f}s; stopped. Check the controller manager, then run "
                        f"`platformctl rollout {stack}` again")
        return Wait("the StatefulSet controller has not observed the latest spec yet")
    if step is None and observed.pods and all(
            pod.health is not None and not pod.health.initialized for pod in observed.pods):
        return Done(f"{stack}: Vault is not initialized yet; nothing to roll out before `vault operator init`")
    pending = _pending(observed, step)
    found = [*pending, *problems(observed)]
    if found:
        # Before the first step too: right after `up`, new pods (a scale-up) may still be joining and
        # a scale-down's voters may not be pruned yet; nothing is touched while waiting.
        if step is None and progress.waited >= rules.timeout:
            return Stop(f"{stack}: Vault did not become healthy within {rules.timeout:.0f}s, so no pod was "
                        f"replaced: {'; '.join(found)}")
        if step is not None and progress.waited >= rules.timeout:
            return Stop(f"{stack}: {_describe(step)} did not settle within {rules.timeout:.0f}s: "
                        f"{'; '.join(found)}. Stopped; nothing more was replaced. Fix it, then run "
                        f"`platformctl rollout {stack}` again")
        return Wait(_unseal_hint(found[0], rules))
    late = behind(observed)
    if not late:
        return Done(f"{stack}: all {observed.replicas} server pods run revision {observed.update_revision} "
                    "and are healthy")
    if not rules.auto_unseal and not rules.unseal_by_hand:
        return Held(f"{stack}: {', '.join(pod.name for pod in late)} run an old revision, and this stack unseals "
                    "with Shamir keys: a replaced pod stays sealed until its key holders unseal it. Run "
                    f"`platformctl rollout {stack} --unseal-by-hand` with them at hand")
    assert observed.raft is not None  # no problems: autopilot's state was read
    [active] = active_pods(observed)
    standbys = [pod for pod in late if pod.name != active.name]
    if observed.replicas == 1:
        return Replace(active.name, active.uid, "sole")
    if observed.raft.failure_tolerance < 1:
        target = standbys[0].name if standbys else active.name
        return Stop(f"{stack}: replacing {target} would lose quorum: autopilot's failure tolerance is "
                    f"{observed.raft.failure_tolerance}; stopped, nothing was replaced")
    if standbys:
        return Replace(standbys[0].name, standbys[0].uid, "standby")
    return StepDown(active.name)


def plan(observed: Observed) -> list[str]:
    """The steps a rollout from ``observed`` takes, in order, for ``--dry-run``."""
    late = behind(observed)
    active = active_pods(observed)
    if not late:
        return []
    if observed.replicas == 1 or len(active) != 1:
        return [f"replace {pod.name}" for pod in late]
    steps = [f"replace {pod.name} (standby), then wait until it is Ready, unsealed and a healthy Raft voter"
             for pod in late if pod.name != active[0].name]
    if any(pod.name == active[0].name for pod in late):
        steps += [f"step down {active[0].name} (active), then wait until another server is active",
                  f"replace {active[0].name}, then wait until it is Ready, unsealed and a healthy Raft voter"]
    return steps


def _pending(observed: Observed, step: Step | None) -> list[str]:
    """What the last step has not achieved yet."""
    pods = {pod.name: pod for pod in observed.pods}
    if isinstance(step, Replace):
        pod = pods.get(step.pod)
        if pod is None or pod.uid == step.uid:
            return [f"{step.pod} has not been recreated yet"]
        if pod.revision != observed.update_revision:
            return [f"{step.pod} came back with revision {pod.revision}, not {observed.update_revision}"]
    if isinstance(step, StepDown):
        pod = pods.get(step.pod)
        if pod is not None and pod in active_pods(observed):
            return [f"{step.pod} is still active after stepping down"]
    return []


def _describe(step: Step) -> str:
    if isinstance(step, StepDown):
        return f"stepping down {step.pod}"
    return f"replacing {step.pod}"


def _unseal_hint(reason: str, rules: Rules) -> str:
    """A sealed pod in a stack without auto-unseal waits for its key holders: say how."""
    match = re.fullmatch(r"(\S+) is sealed", reason)
    if match and not rules.auto_unseal:
        return (f"{reason}: unseal it (`kubectl -n {rules.namespace} exec -ti {match.group(1)} -- "
                "vault operator unseal`, once per key holder)")
    return reason
