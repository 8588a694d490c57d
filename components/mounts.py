"""Secrets engine mounts (``sys/mounts/:path``), declared the same way by every engine."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi
import pulumi_vault as vault

from environment import ClearAuditKeys


@dataclass(frozen=True)
class MountSettings:
    """What the stack states about every secrets engine mount, whichever engine declares it."""

    clear_keys: Mapping[str, ClearAuditKeys]
    """The fields the audit spec logs in clear, by mount path (``Audit.clear_keys_of``)."""
    keeps: Callable[[str], bool]
    """Whether the stateful resource at a Vault path (``sys/mounts/secret``, ``transit/keys/payments``) is
    protected from deletion: unless the stack states its removal (``EnvironmentSpec.keeps``)."""


def clear_request_keys(clear_keys: Mapping[str, ClearAuditKeys], mount: str) -> list[str] | None:
    """Mount tuning ``audit_non_hmac_request_keys`` of ``mount``, or ``None`` (all HMAC'd)."""
    entry = clear_keys.get(mount)
    return list(entry.request_keys) if entry is not None and entry.request_keys else None


def clear_response_keys(clear_keys: Mapping[str, ClearAuditKeys], mount: str) -> list[str] | None:
    """Mount tuning ``audit_non_hmac_response_keys`` of ``mount``, or ``None`` (all HMAC'd)."""
    entry = clear_keys.get(mount)
    return list(entry.response_keys) if entry is not None and entry.response_keys else None


def engine_mount(name: str, settings: MountSettings, *, path: str, engine: str, description: str,
                 opts: pulumi.ResourceOptions, options: dict[str, str] | None = None,
                 max_lease_ttl_seconds: int | None = None) -> vault.Mount:
    """A secrets engine mount (``sys/mounts/:path``) as every engine here declares it: the fields the
    audit spec names logged in clear on it, and protected from deletion unless the stack states its
    removal (deleting a mount deletes everything in it). ``opts`` carries the parent and any
    dependencies."""
    return vault.Mount(
        name,
        path=path,
        type=engine,
        description=description,
        options=options,
        max_lease_ttl_seconds=max_lease_ttl_seconds,
        audit_non_hmac_request_keys=clear_request_keys(settings.clear_keys, path),
        audit_non_hmac_response_keys=clear_response_keys(settings.clear_keys, path),
        opts=opts.merge(pulumi.ResourceOptions(protect=settings.keeps(f"sys/mounts/{path}"))),
    )
