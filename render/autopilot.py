"""The Raft autopilot configuration's inputs (``vault.RaftAutopilot``), from the spec.

terraform-provider-vault (vault/resource_raft_autopilot.go) writes these fields to
``sys/storage/raft/autopilot/configuration`` and reads them back; Vault returns durations as Go's
``time.Duration.String()`` (``10m0s``, vault/logical_raft.go), so they are sent in that form, or
every plan would show a change from ``10m0s`` to ``10m``.
"""

from __future__ import annotations

from typing import Any

from environment import RaftAutopilot

# Vault's own defaults for the rest (the provider's autopilotDefaults), written out so that the plan
# shows them and a hand edit is reverted by the next `up`.
LAST_CONTACT_THRESHOLD = 10
MAX_TRAILING_LOGS = 1000
SERVER_STABILIZATION_TIME = 10


def go_duration(seconds: int) -> str:
    """Whole seconds as Go prints a duration: 600 -> ``10m0s``, 3600 -> ``1h0m0s``, 10 -> ``10s``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def autopilot_inputs(autopilot: RaftAutopilot) -> dict[str, Any]:
    """Keyword arguments of ``vault.RaftAutopilot``."""
    return {
        "cleanup_dead_servers": autopilot.cleanup_dead_servers,
        "dead_server_last_contact_threshold": go_duration(autopilot.dead_server_last_contact_threshold),
        "min_quorum": autopilot.min_quorum,
        "last_contact_threshold": go_duration(LAST_CONTACT_THRESHOLD),
        "max_trailing_logs": MAX_TRAILING_LOGS,
        "server_stabilization_time": go_duration(SERVER_STABILIZATION_TIME),
    }
