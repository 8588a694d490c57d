"""Raft autopilot, per stack: a dead server loses its vote after a threshold, never below the replicas."""

from __future__ import annotations

import pulumi
import pulumi_vault as vault

from components.options import children_of
from environment import RaftAutopilot
from render.autopilot import autopilot_inputs


class Autopilot(pulumi.ComponentResource):
    """``sys/storage/raft/autopilot/configuration``: after a scale-down or the loss of a server beyond
    the replicas, no dead voter stays behind to eat the cluster's failure tolerance."""

    def __init__(self, name: str, autopilot: RaftAutopilot, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:autopilot:Autopilot", name, None, opts)
        vault.RaftAutopilot(f"{name}-config", **autopilot_inputs(autopilot), opts=children_of(self, opts))
        self.register_outputs({})
