"""The transit secrets engine (``sys/mounts/transit``) and its named keys (``transit/keys/:name``)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_vault as vault

from components.mounts import MountSettings, engine_mount
from components.options import children_of, parented_to
from environment import Transit


@dataclass(frozen=True)
class TransitEngineArgs:
    """What :class:`TransitEngine` declares."""

    transit: Transit
    """The stack's transit section: the mount and its named keys."""
    mounts: MountSettings
    """What the stack states about every mount (fields logged in clear, protection, of keys too)."""


class TransitEngine(pulumi.ComponentResource):
    """Encryption and signing as a service: applications send data, keys never leave Vault."""

    mount: pulumi.Output[str]
    """Mount path."""

    def __init__(self, name: str, args: TransitEngineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:transit:TransitEngine", name, None, opts)
        transit = args.transit
        child = children_of(self, opts)
        child_of_self = parented_to(self)
        mount = engine_mount(f"{name}-mount", args.mounts, path=transit.mount, engine="transit",
                             description="Encryption and signing as a service.", opts=child)
        for key in transit.keys:
            keep = args.mounts.keeps(f"{transit.mount}/keys/{key.name}")
            vault.transit.SecretBackendKey(
                f"{name}-{key.name}",
                backend=mount.path,
                name=key.name,
                type=key.type,
                auto_rotate_period=key.auto_rotate_period,
                min_decryption_version=key.min_decryption_version,
                exportable=key.exportable,
                # Vault refuses to delete a key without it (transit/keys/:name DELETE): a key whose removal
                # the stack states allows it, so that the change dropping it can delete it.
                deletion_allowed=key.deletion_allowed or not keep,
                allow_plaintext_backup=False,
                # Losing a key loses every ciphertext made with it.
                opts=child_of_self.merge(pulumi.ResourceOptions(protect=keep)),
            )
        self.mount = mount.path
        self.register_outputs({"mount": self.mount})
