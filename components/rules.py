"""Rules that both the environment spec (before anything is declared) and the guardrails policy pack
(on what a preview or an update would send to the engine) enforce: one implementation for both.

Each function is pure and returns ``None`` when the value passes, or the problem in words. The
caller adds where the value came from (a config key, a resource) and how to fix it. ``tier`` is
``dev``, ``staging`` or ``prod``; anything but ``dev`` gets the production rules.
"""

from __future__ import annotations

import re
from functools import cache

from publicsuffixlist import PublicSuffixList

_EXACT_VERSION = re.compile(r"\d+\.\d+\.\d+")


def exact_version(version: str) -> str | None:
    """A Helm chart version must be exact (``0.34.1``): no range, no ``latest``, nothing left out."""
    if _EXACT_VERSION.fullmatch(version):
        return None
    return f"{version!r} is not an exact version"


def odd_replicas(replicas: int) -> str | None:
    """Raft keeps a majority through a failure only with an odd number of voters."""
    if replicas % 2 == 1:
        return None
    return f"{replicas} replicas is even; Raft needs an odd number to keep a majority through a failure"


MAX_RAFT_VOTERS = 7
"""Vault's integrated storage documentation recommends 3 or 5 voters and tabulates clusters up to 7:
every voter more adds a round trip to each write's quorum and one more Raft join block to the
server config, and 7 already survives three failures."""
MAX_RAFT_VOTERS_WHY = "Vault recommends 3 or 5 Raft voters; more slow every write"


def replica_counts_near(replicas: int, tier: str) -> list[int]:
    """The nearest replica counts the rules accept (odd, enough for the tier, at most
    :data:`MAX_RAFT_VOTERS`): what a message suggests instead of ``replicas``."""
    accepted = [n for n in range(1, MAX_RAFT_VOTERS + 1)
                if odd_replicas(n) is None and enough_replicas(n, tier) is None]
    distance = min(abs(n - replicas) for n in accepted)
    near = [n for n in accepted if abs(n - replicas) == distance]
    return near if replicas >= min(accepted) else accepted[:2]


def enough_replicas(replicas: int, tier: str) -> str | None:
    """Outside dev, at least three Raft voters, so that losing a node keeps a quorum."""
    if tier == "dev" or replicas >= 3:
        return None
    return f"{replicas} replica(s) cannot survive a node failure in {tier}"


def tls_allowed(enabled: bool, tier: str) -> str | None:
    """TLS may only be turned off in dev."""
    if enabled or tier == "dev":
        return None
    return f"TLS may only be turned off in dev, not in {tier}"


def injector_replicas(replicas: int, tier: str) -> str | None:
    """Outside dev, at least two injector replicas: the injector's webhook is in every pod's path."""
    if tier == "dev" or replicas >= 2:
        return None
    count = "one injector replica is" if replicas == 1 else f"{replicas} injector replicas are"
    return (f"{count} a single point of failure in {tier}: no pod with injected secrets can start while "
            "it is down")


def cas_required(required: bool, tier: str) -> str | None:
    """In prod, every KV write must use check-and-set."""
    if required or tier != "prod":
        return None
    return "prod writes must use check-and-set, so that two writers cannot silently overwrite each other"


def wildcard_binding(what: str, value: str) -> str | None:
    """A Kubernetes auth role binds one namespace and one service account, never ``*``."""
    if "*" not in value:
        return None
    return f"binds every {what} ('*'), which lets any workload in the cluster log in as this application"


def ttl_order(default_name: str, default: int, max_name: str, maximum: int, *,
              shown: tuple[str, str] | None = None) -> str | None:
    """A default TTL (seconds) must not be above its maximum TTL; ``shown`` is how both were written."""
    if default <= maximum:
        return None
    default_text, max_text = shown or (_duration(default), _duration(maximum))
    return f"{default_text} is above {max_name} ({max_text})"


TOKEN_TTL_CAP = 4 * 3600
"""An application's Vault token lives at most one renewal window of a few hours."""
TOKEN_MAX_TTL_CAP = 24 * 3600
"""A leaked token dies within a day."""
DATABASE_MAX_TTL_CAP = 24 * 3600
"""Dynamic database credentials live at most a day."""


def ttl_cap(name: str, seconds: int, cap: int, *, shown: str | None = None) -> str | None:
    """A TTL (seconds) must not be above ``cap``; ``shown`` is how it was written."""
    if seconds <= cap:
        return None
    return f"{name} {shown or _duration(seconds)} is above the cap of {_duration(cap)}"


def audit_devices(count: int, tier: str) -> str | None:
    """Vault stops answering requests when it cannot write to any audit device: outside dev, one
    failing device must not stop the service, so there are at least two."""
    minimum = 1 if tier == "dev" else 2
    if count >= minimum:
        return None
    reason = "" if tier == "dev" else (": Vault stops answering requests when it cannot write to any audit "
                                       "device, so one failing device would stop the service")
    return f"declares {count} audit device(s); {tier} needs at least {minimum}{reason}"


SECRET_AUDIT_FIELDS = frozenset({
    "data", "plaintext", "ciphertext", "input", "batch_input", "batch_results", "context", "keys", "key",
    "backup", "signed_key", "certificate_bundle", "ca_chain_bundle", "csr_private_key",
})
"""Request and response fields that carry secrets (KV values, transit input and output, key material)."""
SECRET_AUDIT_WORDS = ("password", "passphrase", "secret", "token", "private", "pem", "bundle", "credential")
"""A field whose name holds one of these may carry a secret or a private key (``pem_bundle``,
``private_key``, ``client_token``, ``secret_id``, ``db_password``, ...)."""


def secret_audit_field(field: str) -> str | None:
    """An audit device logs a field in clear only when it cannot carry a secret or a private key."""
    if field in SECRET_AUDIT_FIELDS or any(word in field for word in SECRET_AUDIT_WORDS):
        return f"{field!r} can carry a secret or a private key and is never logged in clear"
    return None


@cache
def _public_suffixes(accept_unknown: bool) -> PublicSuffixList:
    # The list bundled with the package: no download at run time, updated with the pin.
    return PublicSuffixList(accept_unknown=accept_unknown)


def owned_domain(domain: str, subdomains: bool) -> str | None:
    """A PKI role issues only for names the organisation owns: never for a public suffix (``com``,
    ``co.uk``, ``github.io``), whose names belong to whoever registers them; with subdomains, not for
    a single label either (``internal`` would cover every ``*.internal``)."""
    if _public_suffixes(False).is_public(domain):
        return f"{domain!r} is a public suffix: names under it belong to whoever registers them"
    if subdomains and _public_suffixes(True).is_public(domain):
        return f"{domain!r} is a top-level name: with subdomains allowed, the role would issue for every *.{domain}"
    return None


SECRET_AREAS = frozenset({
    "data", "metadata",  # KV v2: every secret, and its versions and deletion
    "creds", "static-creds",  # database: every role's credentials
    "issue", "sign",  # PKI: a certificate for any role
    "encrypt", "decrypt", "rewrap", "export",  # transit: any key's data, or the key itself
})
"""The second segment of a path under which a mount keeps its secret material (``<mount>/<area>/...``)."""


def _only_globs(text: str) -> bool:
    return bool(text) and set(text) <= {"*", "+", "/"}


def grants_whole_mount(path: str) -> bool:
    """True for a path that reaches everything in one or more mounts: a glob in the first segment
    (``*``, ``pki*``, ``+/data/x``) or nothing but globs after it (``secret/*``, ``sys/+/*``); or the
    whole of a mount's secret material, which is as good as the mount: nothing but globs after an
    area of :data:`SECRET_AREAS` (``secret/data/*``, ``database/creds/+``), or a ``*`` that cuts into
    such an area's name (``secret/d*``, ``database/creds*``)."""
    first, _, rest = path.partition("/")
    if "*" in first or "+" in first or _only_globs(rest):
        return True
    area, slash, tail = rest.partition("/")
    if area in SECRET_AREAS and slash and _only_globs(tail):
        return True
    # A trailing * is a prefix match: ``secret/d*`` reaches ``secret/data/...``.
    return not slash and area.endswith("*") and any(name.startswith(area.rstrip("*")) for name in SECRET_AREAS)


def _duration(seconds: int) -> str:
    # Imported here, not at the top: components.environment imports this module.
    from components.environment.durations import format_duration

    return format_duration(seconds)
