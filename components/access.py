"""Who can reach what, computed from what a stack declares (the resources of a plan or of a
preview): Kubernetes service accounts -> auth roles -> policies -> paths and capabilities ->
the declared KV secrets, database roles, transit keys and PKI roles they reach.

Pure: resource types and inputs in (as the mock engine, a plan document or the policy SDK hands them
over, names never secret), data out. Vault's matching rules come from :mod:`components.vault_acl`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from components import rules

MOUNT = "vault:index/mount:Mount"
KV_SECRET = "vault:kv/secretV2:SecretV2"
DATABASE_ROLE = "vault:database/secretBackendRole:SecretBackendRole"
DATABASE_STATIC_ROLE = "vault:database/secretBackendStaticRole:SecretBackendStaticRole"
TRANSIT_KEY = "vault:transit/secretBackendKey:SecretBackendKey"
PKI_ROLE = "vault:pkiSecret/secretBackendRole:SecretBackendRole"
ACL_POLICY = "vault:index/policy:Policy"
KUBERNETES_ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"

Resource = tuple[str, Mapping[str, Any]]
"""A declared resource: (type token, inputs)."""


def _text(inputs: Mapping[str, Any], key: str) -> str:
    value = inputs.get(key)
    return value if isinstance(value, str) else ""


def data_plane(resources: Iterable[Resource]) -> rules.DataPlane:
    """What the resources declare that an application's policy may reach (the spec builds the same
    from its model: ``components.environment.loader.data_plane``)."""
    mounts: dict[str, set[str]] = {}
    objects: dict[str, set[tuple[str, str]]] = {}
    for type_token, inputs in resources:
        if type_token == MOUNT:
            kind = _text(inputs, "type")
            mounts.setdefault("kv" if kind in ("kv", "kv-v2") else kind, set()).add(_text(inputs, "path"))
        elif type_token == KV_SECRET:
            objects.setdefault(type_token, set()).add((_text(inputs, "mount"), _text(inputs, "name")))
        elif type_token in (DATABASE_ROLE, DATABASE_STATIC_ROLE, TRANSIT_KEY, PKI_ROLE):
            objects.setdefault(type_token, set()).add((_text(inputs, "backend"), _text(inputs, "name")))

    def one(kind: str) -> str | None:
        return min(mounts[kind]) if mounts.get(kind) else None

    def names(type_token: str, mount: str | None) -> frozenset[str]:
        return frozenset(name for owner, name in objects.get(type_token, ()) if owner == mount)

    kv, database, transit = one("kv"), one("database"), one("transit")
    return rules.DataPlane(
        kv_mount=kv, kv_secrets=names(KV_SECRET, kv),
        database_mount=database, database_roles=names(DATABASE_ROLE, database),
        static_roles=names(DATABASE_STATIC_ROLE, database),
        transit_mount=transit, transit_keys=names(TRANSIT_KEY, transit),
        pki_mounts=frozenset(mounts.get("pki", ())), pki_roles=frozenset(objects.get(PKI_ROLE, ())),
    )
