"""What a stack whose last ``pulumi up`` died midway needs before the next one: the pure core of
``platformctl resume``.

The CLI records a step as pending before its call to Vault and as done after it (pulumi/pulumi
pkg/backend/snapshot.go, ``SnapshotManager``); a run killed in between (a lost runner, SIGKILL, OOM)
leaves "pending creates" in the state, which the next ``up`` makes again. For every Vault object the
program declares that is a plain write of the same inputs, except a KV secret under check-and-set:
its first write carries ``cas: 0``, which Vault refuses once the lost run's write reached it
(vault-plugin-secrets-kv, path_data.go, ``validateCheckAndSetOption``). That lost write holds the value
the next write sends again (a generated value is recorded in the state before the write starts; a
stack secret is the config's), so it is deleted, and the next ``up`` writes it as the first version.

The CLI's own ``refresh --import-pending-creates`` does not help: 3.274 turns the operation into an
"importing" one that no step reads, and the next checkpoint drops it (pkg/backend/snapshot.go keeps
pending creates only)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

KV_SECRET = "vault:kv/secretV2:SecretV2"
CREATING = "creating"
CLOCK_SKEW = timedelta(seconds=5)
"""How far the runner's clock (the step's start) and Vault's (the version's write) may disagree."""


@dataclass(frozen=True)
class PendingSecret:
    """A KV v2 secret whose create was pending when the run died."""

    mount: str
    """The KV v2 mount."""
    name: str
    """Its path inside the mount."""
    started: datetime | None
    """When the step began (the pending resource's ``created``), when the state says."""


def pending_creates(deployment: Mapping[str, Any]) -> tuple[list[PendingSecret], int]:
    """The pending KV secret creates of a ``pulumi stack export`` deployment, and how many pending
    creates there are in all."""
    creates = [op["resource"] for op in deployment.get("pending_operations") or () if op.get("type") == CREATING]
    secrets = [PendingSecret(mount=r["inputs"]["mount"], name=r["inputs"]["name"],
                             started=_time(r["created"]) if r.get("created") else None)
               for r in creates if r["type"] == KV_SECRET]
    return secrets, len(creates)


def lost_write(secret: PendingSecret, metadata: Mapping[str, Any] | None) -> bool:
    """Whether Vault's metadata of ``secret`` (``None``: no such secret) shows the dead run's write and
    nothing else: one version, written after the step began. A secret someone wrote before (another
    version, or an older one) is left for the next ``up`` to refuse with Vault's own message."""
    if metadata is None or metadata.get("current_version") != 1 or len(metadata.get("versions") or {}) != 1:
        return False
    return secret.started is None or _time(metadata["versions"]["1"]["created_time"]) >= secret.started - CLOCK_SKEW


def clear_arguments(stack: str) -> list[str]:
    """The ``pulumi refresh`` that drops the pending creates (the next ``up`` makes each again)."""
    return ["refresh", "--stack", stack, "--yes", "--non-interactive", "--skip-preview", "--clear-pending-creates"]


def _time(text: str) -> datetime:
    """An RFC 3339 time, with Vault's nanoseconds cut to what :mod:`datetime` reads."""
    head, dot, tail = text.replace("Z", "+00:00").partition(".")
    if not dot:
        return datetime.fromisoformat(head)
    digits = len(tail) - len(tail.lstrip("0123456789"))
    return datetime.fromisoformat(f"{head}.{tail[:min(digits, 6)]}{tail[digits:]}")
