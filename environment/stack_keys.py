"""The stack config's top-level keys: the namespaces a key may be in, the project's own keys, the
stack's tier and removals, and the stack secrets referenced as ``{fromSecret: <key>}``.

Called by :func:`environment.loader.load_spec`; every refusal is a :class:`SpecError` that names the key.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Set
from typing import Any, cast

from vaultmodel import rules

from ._reader import CONFIG_KEY, REMOVE, Node, SpecError, report
from .model import Tier

PROJECT = "vault-platform"
TIERS: tuple[Tier, ...] = ("dev", "staging", "prod")
# Namespaces a stack's config keys may live in: the project's, its providers' (each provider reads
# its own: vault:address, aws:region, ...) and Pulumi's (pulumi:tags, pulumi:disable-default-providers).
KNOWN_NAMESPACES = (PROJECT, "pulumi", "vault", "kubernetes", "random", "aws")
_STRUCTURED_KEYS = ("tier", "clusterOnly", "vaultCaPublic", "teamStacks", "removals", "cluster", "externalVault",
                    "kubernetesAuth", "kv", "database", "policies", "apps", "audit", "transit", "pki", "snapshots",
                    "monitoring", "githubActions", "oidc")


def stack_parts(stack: str) -> tuple[str, str | None]:
    """A stack's environment and, for a team's stack (``prod.payments``), its team (``None`` for the
    environment's own, ``prod``); a backend's full name (``<org>/<project>/prod.payments``) likewise."""
    environment, dot, team = stack.rpartition("/")[2].partition(".")
    return environment, team if dot else None


def refuse_foreign_namespaces(stack: str, config: Mapping[str, Any]) -> None:
    """A key outside the project's, the providers' and Pulumi's namespaces is read by nobody: a
    misspelt ``vault-platfrom:transit`` would silently drop the section, and the next ``up`` would
    delete everything it declared."""
    for key in config:
        namespace, colon, rest = key.partition(":")
        if colon and namespace in KNOWN_NAMESPACES:
            continue
        close = difflib.get_close_matches(namespace, KNOWN_NAMESPACES, n=1, cutoff=0.6) if colon else []
        meant = f"{close[0]}:{rest}" if close else None
        if meant is None and not colon:
            close = difflib.get_close_matches(key, _STRUCTURED_KEYS, n=1)
            meant = f"{PROJECT}:{close[0]}" if close else None
        report(_unknown_key(stack, config, key, meant, "is in no namespace this program or its providers read",
                            f"remove it, or move it under {PROJECT}: (namespaces read: "
                            f"{', '.join(KNOWN_NAMESPACES)})"))


def project_config(stack: str, config: Mapping[str, Any]) -> Node:
    prefix = f"{PROJECT}:"
    values = {key[len(prefix):]: value for key, value in config.items() if key.startswith(prefix)}
    return Node(stack, prefix, values)


class SecretRefs:
    """Top-level keys that hold secrets, each referenced as ``{fromSecret: <key>}``."""

    def __init__(self, stack: str, config: Mapping[str, Any], secret_keys: Set[str]) -> None:
        self._stack = stack
        self._config = config
        self._secret_keys = secret_keys
        self.used: set[str] = set()

    def reference(self, node: Node, name: str) -> str:
        """The config key named by ``node[name]``, which must be ``{fromSecret: key}`` set as a secret."""
        value = node.raw(name)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            raise node.error(name, "holds a plaintext value where a secret is required",
                             "store the value with `pulumi config set --secret "
                             f"{PROJECT}:<key> <value>` and write {{fromSecret: <key>}} here")
        ref = Node.of(node.stack, node.path(name), value)
        key = ref.string("fromSecret", rule=CONFIG_KEY)
        ref.done()
        if key in _STRUCTURED_KEYS:
            raise ref.error("fromSecret", f"{key!r} is a structured key of the spec",
                            "name a key of its own for the secret")
        full = f"{PROJECT}:{key}"
        if self._config.get(full) is None:
            raise SpecError(self._stack, full, "is not set, but a secret is required here",
                            f"run `pulumi config set --secret {full} <value>`")
        if full not in self._secret_keys:
            raise SpecError(self._stack, full, "holds a plaintext value where a secret is required",
                            f"run `pulumi config set --secret {full} <value>` to store it encrypted")
        self.used.add(key)
        return key

    def refuse_unknown(self, root: Node, app_values: list[Mapping[str, Any]]) -> None:
        unread = [key for key in root.keys() if key not in _STRUCTURED_KEYS and key not in self.used]  # noqa: SIM118
        if not unread:
            return
        # Every {fromSecret: key} of the stack file and of its applications' files counts, also in an
        # item refused for another problem.
        referenced = set(_secret_references([*(value for key, value in self._config.items()
                                               if key.startswith(f"{PROJECT}:")), *app_values]))
        for key in unread:
            if key not in referenced:
                close = difflib.get_close_matches(key, _STRUCTURED_KEYS, n=1)
                full = f"{PROJECT}:{key}"
                report(_unknown_key(self._stack, self._config, full, f"{PROJECT}:{close[0]}" if close else None,
                                    "is not a known key", f"remove it; the known keys are "
                                    f"{', '.join(_STRUCTURED_KEYS)}, and secrets referenced as {{fromSecret: <key>}}"))


def _unknown_key(stack: str, config: Mapping[str, Any], key: str, meant: str | None, problem: str,
                 otherwise: str) -> SpecError:
    """A top-level key nothing reads, with the rename to ``meant`` as its fix (or its removal, when
    ``meant`` is set already)."""
    if meant is None:
        return SpecError(stack, key, problem, otherwise, edits=((key, REMOVE),), unknown_key=True)
    if meant in config:
        return SpecError(stack, key, f"{problem} (did you mean {meant!r}?)", f"remove it: {meant!r} is set already",
                         edits=((key, REMOVE),), unknown_key=True)
    return SpecError(stack, key, f"{problem} (did you mean {meant!r}?)", f"rename it to {meant!r}",
                     edits=((key, REMOVE), (meant, config[key])), unknown_key=True)


def _secret_references(value: Any) -> Iterator[str]:
    """Every ``{fromSecret: key}`` in a config value."""
    if isinstance(value, Mapping):
        if isinstance(value.get("fromSecret"), str):
            yield value["fromSecret"]
        for item in value.values():
            yield from _secret_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _secret_references(item)


def load_tier(stack: str, root: Node) -> Tier:
    """The stack's name when it is a tier, which a stack file cannot override (a prod stack must not
    opt into dev's rules); other stacks (``prod-eu``) say their tier."""
    if stack in TIERS:
        if root.has("tier") and root.raw("tier") != stack:
            raise root.error("tier", f"stack {stack!r} always has the {stack} rules, not {root.raw('tier')!r}",
                             "remove the setting")
        root.raw("tier")
        return stack
    return cast(Tier, root.string("tier", choices=TIERS))


def load_removals(root: Node) -> tuple[str, ...]:
    """``removals``: the stateful configuration the stack means to delete, by Vault path. Each is
    declared unprotected while it is still in the spec; the change that drops it from the spec then
    deletes it. A path no longer declared is harmless here (remove it from the list afterwards)."""
    paths = root.strings("removals")
    for index, path in enumerate(paths):
        if not rules.REMOVAL_PATH.fullmatch(path):
            raise root.error(f"removals[{index}]", f"{path!r} names no mount, auth method, audit device or "
                             "transit key", "write sys/mounts/<path>, sys/auth/<path>, sys/audit/<path> or "
                             "<transit mount>/keys/<name> (a PKI CA goes with its mount)")
    return tuple(dict.fromkeys(paths))
