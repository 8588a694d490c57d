"""Audit devices (``sys/audit/:path``) and the per-mount list of fields logged in clear."""

from __future__ import annotations

import pulumi
import pulumi_vault as vault

from components.options import children_of
from components.spec import AuditDevice, EnvironmentSpec


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


def clear_request_keys(spec: EnvironmentSpec, mount: str) -> list[str] | None:
    """Mount tuning ``audit_non_hmac_request_keys`` of ``mount``, or ``None`` (all HMAC'd)."""
    entry = spec.audit.clear_keys_of.get(mount)
    return list(entry.request_keys) if entry is not None and entry.request_keys else None


def clear_response_keys(spec: EnvironmentSpec, mount: str) -> list[str] | None:
    """Mount tuning ``audit_non_hmac_response_keys`` of ``mount``, or ``None`` (all HMAC'd)."""
    entry = spec.audit.clear_keys_of.get(mount)
    return list(entry.response_keys) if entry is not None and entry.response_keys else None


def engine_mount(name: str, spec: EnvironmentSpec, *, path: str, engine: str, description: str,
                 opts: pulumi.ResourceOptions, options: dict[str, str] | None = None,
                 max_lease_ttl_seconds: int | None = None) -> vault.Mount:
    """A secrets engine mount (``sys/mounts/:path``) as every engine here declares it: the fields the
    audit spec names logged in clear on it, and protected from deletion in prod (deleting a mount
    deletes everything in it). ``opts`` carries the parent and any dependencies."""
    return vault.Mount(
        name,
        path=path,
        type=engine,
        description=description,
        options=options,
        max_lease_ttl_seconds=max_lease_ttl_seconds,
        audit_non_hmac_request_keys=clear_request_keys(spec, path),
        audit_non_hmac_response_keys=clear_response_keys(spec, path),
        opts=opts.merge(pulumi.ResourceOptions(protect=spec.protect)),
    )


class AuditDevices(pulumi.ComponentResource):
    """Every request and response Vault serves, written to each device with secrets HMAC'd.

    Declared before the secrets engines, so that nothing is configured before it can be audited.
    """

    paths: pulumi.Output[list[str]]
    """Paths the devices are enabled at."""

    def __init__(self, name: str, spec: EnvironmentSpec, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:audit:AuditDevices", name, None, opts)
        child = children_of(self, opts).merge(pulumi.ResourceOptions(protect=spec.protect))
        devices = []
        for device in spec.audit.devices:
            devices.append(vault.Audit(
                f"{name}-{device.path}",
                path=device.path,
                type=device.type,
                description=device.description,
                local=False,
                options=device_options(device, spec.audit.hmac_accessor),
                opts=child,
            ))
        self.paths = pulumi.Output.all(*(device.path for device in devices)).apply(list)
        self.register_outputs({"paths": self.paths})
