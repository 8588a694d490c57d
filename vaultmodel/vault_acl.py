"""Vault's ACL semantics: may a token holding these policies use capability C on path P?

Pure and offline. It decides the way Vault's ``vault/acl.go`` does (``NewACL``, ``AllowOperation``,
``CheckAllowedFromNonExactPaths`` and the priority comparison of its ``wcPathDescr``), with the path
rules parsed as ``vault/policy.go`` (``parsePaths``) parses them:

* a path without ``*`` or ``+`` matches itself only (an *exact* rule);
* a trailing ``*`` makes a prefix rule: ``secret/foo*`` matches ``secret/foo`` and ``secret/food/x``;
* ``+`` stands for exactly one path segment (``secret/+/teamb``); with a trailing ``*`` too
  (``secret/+/teamb/*``) the rule is a prefix rule of that many segments;
* the same path in several policies: the union of their capabilities, except that ``deny`` in any
  of them wins and drops every other capability;
* different matching paths: an exact rule first; otherwise only the highest-priority pattern counts
  (the list in Vault's "Policies" concept page): the first ``+`` or ``*`` later in the path wins, then
  a pattern not ending in ``*``, then fewer ``+`` segments, then the longer pattern, then the
  lexicographically greater one;
* Vault appends ``/`` to every LIST request; for a LIST an exact rule without that slash applies
  (hashicorp/vault#5197), and the patterns matching either form are ranked together, a more specific
  ``deny`` winning over a ``list`` grant (``resolveACLPermsForListOp``);
* the ``root`` policy allows everything; no matching rule denies.

Templated paths (``{{identity.entity.id}}``) are kept literally: they stand for the token's own
entity, never for a path this project declares. Parameter constraints, wrapping TTLs and control
groups are not modelled (no policy of this project uses them, and :mod:`render.acl`
refuses them).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

CAPABILITIES = ("create", "read", "update", "patch", "delete", "list", "sudo", "subscribe", "recover")
"""Every capability Vault grants (``deny`` is the absence of all of them)."""
DENY = "deny"
ROOT_POLICY = "root"

DEFAULT_POLICY_NAME = "default"
DEFAULT_POLICY = '''
# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own entity by id or name
path "identity/entity/id/{{identity.entity.id}}" {
  capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
  capabilities = ["read"]
}


# Allow a token to look up its resultant ACL from all policies. This is useful
# for UIs. It is an internal path because the format may change at any time
# based on how the internal ACL features and capabilities change.
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body; old path for
# old clients, new path for newer
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties. This requires knowing the lease ID ahead
# of time and does not divulge any sensitive information.
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

# Allow checking the status of a Control Group request if the user has the
# accessor
path "sys/control-group/request" {
    capabilities = ["update"]
}

# Allow a token to make requests to the Authorization Endpoint for OIDC providers.
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}
'''
"""The built-in ``default`` policy, as Vault writes it at initialization (``defaultPolicy`` in
``vault/policy_store.go``; the text ``vault policy read default`` prints on Vault 1.15 and later).
Every token gets it unless its role sets ``token_no_default_policy``."""


class Rule(Protocol):
    """A ``path`` block: anything with a path and capabilities (e.g. ``PolicyRule``)."""

    @property
    def path(self) -> str: ...

    @property
    def capabilities(self) -> tuple[str, ...]: ...


class PolicyParseError(ValueError):
    """A policy text does not parse, or uses something Vault would reject or this project does not use."""


@dataclass(frozen=True)
class PathRule:
    """One ``path`` block as parsed."""

    path: str
    """The path as written."""
    capabilities: tuple[str, ...]
    """Capabilities, in the order written."""


def parse_rules(text: str, source: str) -> tuple[PathRule, ...]:
    """The ``path`` blocks of a policy text (python-hcl2); raises :class:`PolicyParseError`, starting
    with ``source``, when it does not parse, has anything but ``path`` blocks with ``capabilities``,
    or a capability Vault does not know."""
    import hcl2  # here, not at the top: a plan that parses no policy does not pay for the parser

    try:
        document: dict[str, Any] = hcl2.loads(text)
    except Exception as error:  # the parser raises several unrelated types
        raise PolicyParseError(f"{source}: not valid HCL: {error}") from None
    known = (*CAPABILITIES, DENY)
    rules = []
    for key, blocks in document.items():
        if key.startswith("__"):  # the parser's own metadata (comments, block markers)
            continue
        if key != "path":
            raise PolicyParseError(f"{source}: unexpected {key!r}; a policy has only path blocks")
        for block in blocks:
            for raw_path, body in block.items():
                path = _unquote(raw_path)
                for setting in body:
                    if setting != "capabilities" and not setting.startswith("__"):
                        raise PolicyParseError(f"{source}: path {path!r}: unknown setting {setting!r}")
                capabilities = tuple(_unquote(c) for c in body.get("capabilities", ()))
                if not capabilities or any(c not in known for c in capabilities):
                    raise PolicyParseError(f"{source}: path {path!r}: capabilities {list(capabilities)} "
                                           f"must be some of {', '.join(known)}")
                rules.append(PathRule(path, capabilities))
    if not rules:
        raise PolicyParseError(f"{source}: no path blocks")
    return tuple(rules)


def _unquote(value: Any) -> str:
    text = str(value)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return str(json.loads(text))
    return text


@dataclass(frozen=True)
class Grant:
    """What the rule that decides a path grants there."""

    pattern: str
    """The policy path that matched, as written (``secret/data/*``), or ``""`` when none did."""
    capabilities: frozenset[str]
    """Capabilities granted; empty when denied or when nothing matched."""
    policies: tuple[str, ...]
    """Policies that contribute the pattern, sorted."""
    denied: bool = False
    """An explicit ``deny`` decided."""


NO_GRANT = Grant("", frozenset(), ())


@dataclass
class _Entry:
    pattern: str
    capabilities: set[str] = field(default_factory=set)
    policies: set[str] = field(default_factory=set)
    denied: bool = False

    def add(self, capabilities: Iterable[str], policy: str) -> None:
        self.policies.add(policy)
        if self.denied:
            return
        capabilities = set(capabilities)
        if DENY in capabilities:
            self.denied = True
            self.capabilities = set()
        else:
            self.capabilities |= capabilities

    def grant(self) -> Grant:
        return Grant(self.pattern, frozenset(self.capabilities), tuple(sorted(self.policies)), self.denied)


@dataclass(frozen=True)
class _Candidate:
    """A prefix or segment-wildcard rule that matches a path, with Vault's priority keys."""

    first_wildcard: int
    is_prefix: bool
    wildcards: int
    stem: str
    entry: _Entry

    def priority(self) -> tuple[int, bool, int, int, str]:
        # Higher sorts later = wins (``wildcardPathDescriptorComparePriority``).
        return (self.first_wildcard, not self.is_prefix, -self.wildcards, len(self.stem), self.stem)


class Acl:
    """The access a token with some policies has (``NewACL``)."""

    def __init__(self, policies: Mapping[str, Iterable[Rule]]) -> None:
        """``policies``: policy name -> its path rules. A policy named ``root`` allows everything."""
        self.root = ROOT_POLICY in policies
        self._exact: dict[str, _Entry] = {}
        self._prefix: dict[str, _Entry] = {}  # keyed by the path without its trailing '*'
        self._segment: dict[str, _Entry] = {}  # keyed by the path as written
        for name, rules in policies.items():
            for rule in rules:
                self._insert(rule.path, rule.capabilities, name)
        self._prefix_lengths = sorted({len(prefix) for prefix in self._prefix}, reverse=True)

    @classmethod
    def of_texts(cls, texts: Mapping[str, str], *, default_policy: bool = True) -> Acl:
        """The ACL of policies given as HCL texts by name, with Vault's ``default`` policy unless
        ``default_policy`` is false (a role with ``token_no_default_policy``)."""
        parsed: dict[str, Iterable[Rule]] = {name: parse_rules(text, f"policy {name!r}")
                                             for name, text in texts.items()}
        if default_policy and DEFAULT_POLICY_NAME not in parsed:
            parsed[DEFAULT_POLICY_NAME] = default_rules()
        return cls(parsed)

    def _insert(self, raw: str, capabilities: Iterable[str], policy: str) -> None:
        path = raw[1:] if raw.startswith("/") else raw
        if "+*" in path:
            raise ValueError(f"path {raw!r}: invalid use of wildcards ('+*' is forbidden)")
        if path == "+" or "/+" in path or path.startswith("+/"):
            table, key = self._segment, path
        elif path.endswith("*"):
            table, key = self._prefix, path[:-1]
        else:
            table, key = self._exact, path
        table.setdefault(key, _Entry(path)).add(capabilities, policy)

    def grant(self, path: str, *, listing: bool = False) -> Grant:
        """The rule that decides a request on ``path`` and what it grants (``AllowOperation``).
        ``listing``: the request is a LIST, for which Vault appends ``/`` to the path."""
        if self.root:
            return Grant("", frozenset(CAPABILITIES), (ROOT_POLICY,))
        path = path.lstrip("/")
        if listing and not path.endswith("/"):
            path += "/"
        exact = self._exact.get(path)
        if exact is None and listing:
            exact = self._exact.get(path.removesuffix("/"))
        if exact is not None:
            return exact.grant()
        if listing:
            candidates = self._candidates(path.removesuffix("/")) + self._candidates(path)
            if not candidates:
                return NO_GRANT
            return _resolve_list(candidates).grant()
        candidates = self._candidates(path)
        if not candidates:
            return NO_GRANT
        return max(candidates, key=_Candidate.priority).entry.grant()

    def capabilities(self, path: str) -> frozenset[str]:
        """The capabilities a token has on ``path`` (what ``sys/capabilities-self`` answers, which
        evaluates a LIST; for a path without a trailing ``/`` that is the same rule as any other
        request but for the patterns matching ``path/``)."""
        return self.grant(path).capabilities

    def allows(self, capability: str, path: str) -> bool:
        """May the token use ``capability`` on ``path``? ``list`` is evaluated as a LIST request."""
        if capability not in CAPABILITIES:
            raise ValueError(f"{capability!r} is not a Vault capability ({', '.join(CAPABILITIES)})")
        return capability in self.grant(path, listing=capability == "list").capabilities

    def _candidates(self, path: str) -> list[_Candidate]:
        candidates = []
        for length in self._prefix_lengths:  # the longest matching prefix (the radix tree's LongestPrefix)
            entry = self._prefix.get(path[:length]) if length <= len(path) else None
            if entry is not None:
                candidates.append(_Candidate(length, True, 0, path[:length], entry))
                break
        if self._segment:
            parts = path.split("/")
            for pattern, entry in self._segment.items():
                candidate = _match_segments(pattern, parts, entry)
                if candidate is not None:
                    candidates.append(candidate)
        return candidates


def _match_segments(pattern: str, parts: list[str], entry: _Entry) -> _Candidate | None:
    is_prefix = pattern.endswith("*")
    stem = pattern[:-1] if is_prefix else pattern
    pattern_parts = stem.split("/")
    if len(parts) < len(pattern_parts) or (not is_prefix and len(parts) != len(pattern_parts)):
        return None
    wildcards = 0
    last = len(pattern_parts) - 1
    for index, part in enumerate(pattern_parts):
        if part == "+":
            wildcards += 1
        elif part != parts[index] and not (is_prefix and index == last and parts[index].startswith(part)):
            return None
    return _Candidate(pattern.index("+"), is_prefix, wildcards, stem, entry)


def _resolve_list(candidates: list[_Candidate]) -> _Entry:
    """For a LIST, a more specific ``deny`` beats the most specific ``list`` grant; else that grant;
    else the most specific candidate."""
    denies = [c for c in candidates if c.entry.denied]
    listers = [c for c in candidates if "list" in c.entry.capabilities]
    best_deny = max(denies, key=_Candidate.priority) if denies else None
    best_list = max(listers, key=_Candidate.priority) if listers else None
    if best_deny is not None and (best_list is None or best_list.priority() < best_deny.priority()):
        return best_deny.entry
    if best_list is not None:
        return best_list.entry
    return max(candidates, key=_Candidate.priority).entry


@functools.cache
def default_rules() -> tuple[PathRule, ...]:
    """The rules of :data:`DEFAULT_POLICY` (parsed once)."""
    return parse_rules(DEFAULT_POLICY, "Vault's default policy")


def matcher(pattern: str) -> Callable[[str], bool]:
    """Whether policy path ``pattern`` (exact, ``*`` or ``+``) applies to a request path: the ACL built
    once, for testing many paths."""
    acl = Acl({"": [PathRule(pattern, ("read",))]})
    return lambda path: acl.allows("read", path)


def matches(pattern: str, path: str) -> bool:
    """Does policy path ``pattern`` (exact, ``*`` or ``+``) apply to request path ``path``?"""
    return matcher(pattern)(path)
