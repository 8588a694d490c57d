"""Who can reach what, computed from what a stack declares (the resources of a plan or of a
preview): Kubernetes service accounts -> auth roles -> policies -> paths and capabilities ->
the declared KV secrets, database roles, transit keys and PKI roles they reach.

Pure: resource types and inputs in (as the mock engine, a plan document or the policy SDK hands them
over, names never secret), data out. Vault's matching rules come from :mod:`vaultmodel.vault_acl`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vaultmodel import rules, vault_acl

MOUNT = "vault:index/mount:Mount"
KV_SECRET = "vault:kv/secretV2:SecretV2"
DATABASE_ROLE = "vault:database/secretBackendRole:SecretBackendRole"
DATABASE_STATIC_ROLE = "vault:database/secretBackendStaticRole:SecretBackendStaticRole"
TRANSIT_KEY = "vault:transit/secretBackendKey:SecretBackendKey"
PKI_ROLE = "vault:pkiSecret/secretBackendRole:SecretBackendRole"
ACL_POLICY = "vault:index/policy:Policy"
KUBERNETES_ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
IDENTITY_GROUP = "vault:identity/group:Group"

Resource = tuple[str, Mapping[str, Any]]
"""A declared resource: (type token, inputs)."""


def _text(inputs: Mapping[str, Any], key: str) -> str:
    value = inputs.get(key)
    return value if isinstance(value, str) else ""


def data_plane(resources: Iterable[Resource]) -> rules.DataPlane:
    """What the resources declare that an application's policy may reach (the spec builds the same
    from its model: ``environment.policies.data_plane``)."""
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


# --- the access matrix ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """Something the stack declares that a token can use, and the API paths that use it."""

    kind: str
    """``KV secret``, ``database role``, ``static database role``, ``transit key`` or ``PKI role``."""
    name: str
    """Its name inside its mount (``production/api-service``, ``api-role``)."""
    mount: str
    """Its mount path."""
    paths: tuple[str, ...]
    """Every API path that reads, uses, changes or deletes it."""
    operations: tuple[str, ...]
    """What each of :attr:`paths` is, in the same order: the path without the mount and the name
    (``data``, ``creds``, ``encrypt``, ``keys/config``)."""


@dataclass(frozen=True)
class PathGrant:
    """A ``path`` rule of a policy an identity holds."""

    policy: str
    """The policy."""
    path: str
    """The rule's path, as written."""
    capabilities: tuple[str, ...]
    """As written."""


@dataclass(frozen=True)
class Reach:
    """What an identity may do on one path of a declared target, by Vault's rules."""

    target: Target
    """The declared target."""
    path: str
    """The API path."""
    capabilities: tuple[str, ...]
    """Effective capabilities there, in :data:`vault_acl.CAPABILITIES` order."""
    granted_by: tuple[tuple[str, tuple[str, ...]], ...]
    """Each policy whose rule decides the path, with what that rule grants, by policy (several
    policies with a rule on the same path are merged by Vault; the others' broader rules count for
    nothing there)."""


@dataclass(frozen=True)
class Identity:
    """Who logs in (or, for a platform policy, whoever holds it) and what that gives."""

    subject: str
    """``<namespace>/<service account>`` for a Kubernetes role; ``<auth path>/<role>`` for another
    auth method's role (JWT, OIDC); ``group <name>`` for an identity group; ``policy <name>`` for a
    platform policy."""
    via: str
    """How the token is obtained: ``auth/<path>/role/<role>``, or a description."""
    policies: tuple[str, ...]
    """Policies the token carries (``default`` included unless the role drops it)."""
    grants: tuple[PathGrant, ...]
    """Every rule of those policies (but ``default``'s), by policy then path."""
    reaches: tuple[Reach, ...]
    """Every declared target's path with the capabilities the token has there, by target then path."""
    unknown_policies: tuple[str, ...] = ()
    """Policies the role names that the stack does not declare (they grant nothing here)."""


@dataclass(frozen=True)
class AccessMatrix:
    """The effective access of every identity a stack declares."""

    identities: tuple[Identity, ...]
    """Workload identities (auth roles), by subject."""
    platform: tuple[Identity, ...]
    """The platform's own policies (:data:`rules.ADMIN_POLICIES`, :data:`rules.READ_ONLY_POLICIES`),
    each alone."""


_OPERATIONS = {
    KV_SECRET: ("KV secret", ("data", "metadata", "delete", "undelete", "destroy")),
    DATABASE_ROLE: ("database role", ("creds", "roles")),
    DATABASE_STATIC_ROLE: ("static database role", ("static-creds", "static-roles", "rotate-role")),
    TRANSIT_KEY: ("transit key", (*rules.TRANSIT_DATA_OPERATIONS, "datakey/plaintext", "datakey/wrapped", "keys",
                                  "keys/config", "keys/rotate", "export/encryption-key", "backup")),
    PKI_ROLE: ("PKI role", ("issue", "sign", "roles")),
}
"""Per declared type: the kind of target, and every operation on it (:attr:`Target.operations`)."""
_KEY_SETTINGS = ("keys/config", "keys/rotate")
"""Operations whose path has the key's name before the operation: ``<mount>/keys/<key>/config``."""


def targets(resources: Iterable[Resource]) -> tuple[Target, ...]:
    """What the resources declare that a token can use, with the paths each is used at."""
    found = []
    for type_token, inputs in resources:
        if type_token not in _OPERATIONS:
            continue
        kind, operations = _OPERATIONS[type_token]
        mount = _text(inputs, "mount" if type_token == KV_SECRET else "backend")
        name = _text(inputs, "name")
        paths = tuple(f"{mount}/keys/{name}/{operation.removeprefix('keys/')}" if operation in _KEY_SETTINGS
                      else f"{mount}/{operation}/{name}" for operation in operations)
        found.append(Target(kind, name, mount, paths, operations))
    return tuple(sorted(found, key=lambda target: (target.mount, target.kind, target.name)))


class _Index:
    """Every target path, sorted, so that a policy path finds its candidates by prefix (the work
    stays linear in the number of apps: each app's exact rules are dictionary lookups)."""

    def __init__(self, found: Iterable[Target]) -> None:
        self.by_path = {path: target for target in found for path in target.paths}
        self.paths = sorted(self.by_path)

    def candidates(self, pattern: str) -> list[str]:
        literal = rules.literal_prefix(pattern)
        if literal == pattern:
            return [pattern] if pattern in self.by_path else []
        start = bisect.bisect_left(self.paths, literal)
        end = bisect.bisect_left(self.paths, literal + "\U0010ffff")
        return self.paths[start:end]


def _evaluate(policies: Mapping[str, Sequence[vault_acl.Rule]], index: _Index) -> tuple[Reach, ...]:
    acl = vault_acl.Acl(policies)
    # What each policy's rule on a path grants (the ACL keeps only the merge): path as Vault keys it.
    written: dict[tuple[str, str], set[str]] = {}
    for name, policy_rules in policies.items():
        for rule in policy_rules:
            written.setdefault((name, rule.path.removeprefix("/")), set()).update(rule.capabilities)
    seen: set[str] = set()
    reaches = []
    for policy_rules in policies.values():
        for rule in policy_rules:
            for path in index.candidates(rule.path):
                if path in seen:
                    continue
                seen.add(path)
                grant = acl.grant(path)
                if grant.capabilities:  # a policy named root grants everything without a rule
                    granted_by = tuple((name, _ordered(written.get((name, grant.pattern), grant.capabilities)))
                                       for name in grant.policies)
                    reaches.append(Reach(index.by_path[path], path, _ordered(grant.capabilities), granted_by))
    return tuple(sorted(reaches, key=lambda r: (r.target.kind, r.target.mount, r.target.name, r.path)))


def _ordered(capabilities: Iterable[str]) -> tuple[str, ...]:
    granted = set(capabilities)
    return tuple(c for c in vault_acl.CAPABILITIES if c in granted)


def _grants(policies: Mapping[str, Sequence[vault_acl.Rule]]) -> tuple[PathGrant, ...]:
    return tuple(PathGrant(name, rule.path, tuple(rule.capabilities))
                 for name, policy_rules in sorted(policies.items()) if name != vault_acl.DEFAULT_POLICY_NAME
                 for rule in sorted(policy_rules, key=lambda r: r.path))


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list | tuple) else []


def access_matrix(resources: Sequence[Resource]) -> AccessMatrix:
    """Who reaches what among ``resources`` (a stack's declared resources)."""
    index = _Index(targets(resources))
    texts = {_text(inputs, "name"): _text(inputs, "policy") for type_token, inputs in resources
             if type_token == ACL_POLICY}
    parsed: dict[str, tuple[vault_acl.PathRule, ...]] = {}
    for name, text in texts.items():
        try:
            parsed[name] = vault_acl.parse_rules(text, f"policy {name!r}")
        except vault_acl.PolicyParseError:
            parsed[name] = ()  # the guardrails refuse it; it grants nothing here
    identities = []
    for type_token, inputs in resources:
        if not type_token.endswith("/authBackendRole:AuthBackendRole"):  # Kubernetes, JWT/OIDC, ...
            continue
        names = _strings(inputs.get("tokenPolicies"))
        held: dict[str, Sequence[vault_acl.Rule]] = {name: parsed[name] for name in names if name in parsed}
        if inputs.get("tokenNoDefaultPolicy") is not True:
            held[vault_acl.DEFAULT_POLICY_NAME] = vault_acl.default_rules()
        backend, role = _text(inputs, "backend"), _text(inputs, "roleName")
        grants, reaches = _grants(held), _evaluate(held, index)
        carried = (*names, *((vault_acl.DEFAULT_POLICY_NAME,) if vault_acl.DEFAULT_POLICY_NAME in held else ()))
        unknown = tuple(name for name in names if name not in parsed)
        via = f"auth/{backend}/role/{role}" + _claims(inputs)
        for subject in _subjects(type_token, inputs, backend, role):
            identities.append(Identity(subject, via, carried, grants, reaches, unknown))
    for type_token, inputs in resources:
        if type_token == IDENTITY_GROUP:
            # Members get the group's policies on top of their login's (people: OIDC, with default).
            names = _strings(inputs.get("policies"))
            held = {name: parsed[name] for name in names if name in parsed}
            held[vault_acl.DEFAULT_POLICY_NAME] = vault_acl.default_rules()
            group = _text(inputs, "name")
            identities.append(Identity(
                f"group {group}", f"membership of identity group {group!r} ({_text(inputs, 'type') or 'internal'})",
                (*names, vault_acl.DEFAULT_POLICY_NAME), _grants(held), _evaluate(held, index),
                tuple(name for name in names if name not in parsed)))
    platform = [Identity(f"policy {name}", "a token or an identity given the policy", (name,),
                         _grants({name: parsed[name]}), _evaluate({name: parsed[name]}, index))
                for name in (*rules.ADMIN_POLICIES, *rules.READ_ONLY_POLICIES) if name in parsed]
    return AccessMatrix(tuple(sorted(identities, key=lambda i: (i.subject, i.via))), tuple(platform))


def _claims(inputs: Mapping[str, Any]) -> str:
    """A JWT role's bound claims, as ``(claim=value, ...)``."""
    claims = inputs.get("boundClaims")
    if not isinstance(claims, Mapping) or not claims:
        return ""
    return " (" + ", ".join(f"{claim}={value}" for claim, value in sorted(claims.items())) + ")"


def _subjects(type_token: str, inputs: Mapping[str, Any], backend: str, role: str) -> list[str]:
    if type_token == KUBERNETES_ROLE:
        return [f"{namespace}/{account}" for namespace in _strings(inputs.get("boundServiceAccountNamespaces"))
                for account in _strings(inputs.get("boundServiceAccountNames"))]
    return [f"{backend}/{role}"]


# --- the matrix for people and for tools ------------------------------------------------------------

def matrix_document(matrix: AccessMatrix) -> dict[str, Any]:
    """The matrix as JSON-ready data (``platformctl access --json``)."""
    def identity(entry: Identity) -> dict[str, Any]:
        return {
            "subject": entry.subject, "via": entry.via, "policies": list(entry.policies),
            "unknownPolicies": list(entry.unknown_policies),
            "grants": [{"policy": g.policy, "path": g.path, "capabilities": list(g.capabilities)}
                       for g in entry.grants],
            "reaches": [{"kind": r.target.kind, "name": r.target.name, "path": r.path,
                         "capabilities": list(r.capabilities)} for r in entry.reaches],
        }

    return {"identities": [identity(entry) for entry in matrix.identities],
            "platformPolicies": [identity(entry) for entry in matrix.platform]}


def matrix_text(matrix: AccessMatrix, stack: str) -> str:
    """The matrix as a platform engineer reads it (``platformctl access``)."""
    lines = [f"Access of stack {stack!r}: what each identity's token may do on what the stack declares, "
             "by Vault's ACL rules",
             "(offline, from the program's declarations; 'default' is Vault's built-in policy: token "
             "self-lookup, renewal and revocation, its own cubbyhole, response wrapping)"]
    if not matrix.identities and not matrix.platform:
        return "\n".join([*lines, "", "No Vault identity or policy is declared (cluster only)."]) + "\n"
    for entry in matrix.identities:
        lines += ["", entry.subject, f"  through {entry.via}: policies {', '.join(entry.policies)}"]
        lines += _entry_lines(entry)
    if matrix.platform:
        lines += ["", "Platform policies, each alone (beyond the data plane on purpose: reported, not refused; held "
                      "by people, CI and the platform's own jobs):"]
        for entry in matrix.platform:
            lines += ["", entry.subject]
            lines += _entry_lines(entry)
    return "\n".join(lines) + "\n"


def _entry_lines(entry: Identity) -> list[str]:
    lines = []
    if entry.unknown_policies:
        lines.append(f"  policies the stack does not declare (they grant nothing): {', '.join(entry.unknown_policies)}")
    lines.append("  reaches:" if entry.reaches else "  reaches: nothing the stack declares")
    width = max((len(f"{r.target.kind} {r.target.name}") for r in entry.reaches), default=0)
    lines += [f"    {f'{r.target.kind} {r.target.name}':<{width}}  {', '.join(r.capabilities)} on {r.path}"
              for r in entry.reaches]
    lines.append("  rules:" if entry.grants else "  rules: none but Vault's default policy")
    lines += [f"    {g.policy}: {', '.join(g.capabilities)} on {g.path}" for g in entry.grants]
    return lines


# --- what a change does to access ---------------------------------------------------------------------

@dataclass(frozen=True)
class AccessChange:
    """What one identity gains and loses between two versions of a stack."""

    subject: str
    """The identity (see :attr:`Identity.subject`)."""
    status: str
    """``new``, ``removed`` or ``changed``."""
    gained: tuple[tuple[str, tuple[str, ...]], ...]
    """(path, capabilities) it gains, by path."""
    lost: tuple[tuple[str, tuple[str, ...]], ...]
    """(path, capabilities) it loses, by path."""


def _facts(entry: Identity) -> set[tuple[str, str]]:
    """(capability, path) pairs: the effective capabilities on each declared target's paths, and the
    rules' own (so that a grant outside the declared targets, under sys/ say, shows too)."""
    facts = {(capability, reach.path) for reach in entry.reaches for capability in reach.capabilities}
    facts |= {(capability, grant.path) for grant in entry.grants for capability in grant.capabilities}
    return facts


def access_changes(before: AccessMatrix, after: AccessMatrix) -> tuple[AccessChange, ...]:
    """Per identity, what matrix ``after`` grants that ``before`` did not, and the reverse."""
    old = {entry.subject: _facts(entry) for entry in (*before.identities, *before.platform)}
    new = {entry.subject: _facts(entry) for entry in (*after.identities, *after.platform)}
    changes = []
    for subject in sorted(old.keys() | new.keys()):
        was, now = old.get(subject, set()), new.get(subject, set())
        gained, lost = now - was, was - now
        if gained or lost or (subject in old) != (subject in new):
            status = "new" if subject not in old else "removed" if subject not in new else "changed"
            changes.append(AccessChange(subject, status, _by_path(gained), _by_path(lost)))
    return tuple(changes)


def _by_path(facts: set[tuple[str, str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    paths: dict[str, set[str]] = {}
    for capability, path in facts:
        paths.setdefault(path, set()).add(capability)
    return tuple((path, tuple(c for c in (*vault_acl.CAPABILITIES, vault_acl.DENY) if c in paths[path]))
                 for path in sorted(paths))
