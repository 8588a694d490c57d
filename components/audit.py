"""Audit devices (``sys/audit/:path``). The fields logged in clear per mount go on each mount
(:mod:`components.mounts`)."""

from __future__ import annotations

from collections.abc import Callable

import pulumi
import pulumi_vault as vault

from components.options import children_of
from environment import Audit, AuditDevice


def device_options(device: AuditDevice, hmac_accessor: bool) -> dict[str, str]:
    """The device's options as Vault takes them (strings). ``log_raw`` is always written out as
    ``false``, so that the plan shows it and a hand edit in Vault is reverted by the next run."""
    options = {"format": "json", "log_raw": "false", "hmac_accessor": str(hmac_accessor).lower()}
    if device.type == "file":
        assert device.file_path is not None
        options["file_path"] = device.file_path
        if device.file_path != "stdout":
            options["mode"] = "0600"
    else:
        assert device.address is not None
        assert device.socket_type is not None
        options["address"] = device.address
        options["socket_type"] = device.socket_type
    return dict(sorted(options.items()))


class AuditDevices(pulumi.ComponentResource):
    """Every request and response Vault serves, written to each device with secrets HMAC'd.

    Declared before the secrets engines, so that nothing is configured before it can be audited.
    Every field of a device replaces it (``vault/resource_audit.go``: all ForceNew), and Vault has one
    device per ``sys/audit/<path>``: the old one is disabled before the new one is enabled there
    (Pulumi's default, create first, fails with the path in use).
    """

    paths: pulumi.Output[list[str]]
    """Paths the devices are enabled at."""
    devices: list[vault.Audit]
    """The devices: what every other Vault resource waits for."""

    def __init__(self, name: str, audit: Audit, keeps: Callable[[str], bool],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """``audit`` is the stack's audit section; ``keeps`` tells whether the device at a Vault path
        (``sys/audit/file``) is protected from deletion (``EnvironmentSpec.keeps``)."""
        super().__init__("vault-platform:audit:AuditDevices", name, None, opts)
        child = children_of(self, opts)
        devices = []
        for device in audit.devices:
            devices.append(vault.Audit(
                f"{name}-{device.path}",
                path=device.path,
                type=device.type,
                description=device.description,
                local=False,
                options=device_options(device, audit.hmac_accessor),
                opts=child.merge(pulumi.ResourceOptions(protect=keeps(f"sys/audit/{device.path}"),
                                                        delete_before_replace=True)),
            ))
        self.devices = devices
        self.paths = pulumi.Output.all(*(device.path for device in devices)).apply(list)
        self.register_outputs({"paths": self.paths})
