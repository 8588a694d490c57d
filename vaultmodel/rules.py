"""Rules that both the environment spec (before anything is declared) and the guardrails policy pack
(on what a preview or an update would send to the engine) enforce: one implementation for both.

Each function is pure and returns ``None`` when the value passes, or the problem in words. The
caller adds where the value came from (a config key, a resource) and how to fix it. ``tier`` is
``dev``, ``staging`` or ``prod``; anything but ``dev`` gets the production rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from publicsuffixlist import PublicSuffixList

from vaultmodel import vault_acl
from vaultmodel.durations import format_duration

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


# libpq modes that verify the server (the others may hand the admin password to any server, or send it in clear).
VERIFYING_SSL_MODES = ("verify-ca", "verify-full")


def database_tls(ssl_mode: str, has_ca: bool, tier: str) -> str | None:
    """Outside dev, Vault verifies the PostgreSQL server it hands the admin password to: verify-full,
    or verify-ca against the database's own CA (against the public roots it accepts any name)."""
    if tier == "dev":
        return None
    if ssl_mode not in VERIFYING_SSL_MODES:
        return (f"{ssl_mode} does not verify the server in {tier}: whoever answers for the host name gets the "
                "admin password")
    if ssl_mode == "verify-ca" and not has_ca:
        return "verify-ca against the public roots accepts any certificate they signed, for any name"
    return None


def database_host(host: str, tier: str) -> str | None:
    """Outside dev, a database host is a fully qualified DNS name: the name its certificate carries."""
    if tier == "dev":
        return None
    if host.replace(".", "").isdigit() or ":" in host:
        return f"{host!r} is an IP address: {tier} connections verify the name the server's certificate carries"
    if "." not in host:
        return (f"{host!r} is not a fully qualified host name: {tier} connections verify the name the server's "
                "certificate carries, and a short name resolves through the search domains")
    return None


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
    default_text, max_text = shown or (format_duration(default), format_duration(maximum))
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
    return f"{name} {shown or format_duration(seconds)} is above the cap of {format_duration(cap)}"


def lease_within_token(role_max_ttl: int, token_max_ttl: int, app: str) -> str | None:
    """A database role's credentials live no longer than the tokens that take them: a lease belongs to
    the token that created it, and Vault revokes it (drops the user, ending its sessions) when that
    token expires, whatever the role's maxTtl says."""
    if role_max_ttl <= token_max_ttl:
        return None
    token_max = format_duration(token_max_ttl)
    return (f"{format_duration(role_max_ttl)} outlives the tokens of application {app!r} (tokenMaxTtl {token_max}): "
            f"Vault revokes a lease when the token that created it expires, so its database users would be "
            f"dropped after {token_max}")


def audit_devices(count: int, tier: str) -> str | None:
    """Vault stops answering requests when it cannot write to any audit device: outside dev, one
    failing device must not stop the service, so there are at least two."""
    minimum = 1 if tier == "dev" else 2
    if count >= minimum:
        return None
    reason = "" if tier == "dev" else (": Vault stops answering requests when it cannot write to any audit "
                                       "device, so one failing device would stop the service")
    return f"declares {count} audit device(s); {tier} needs at least {minimum}{reason}"


def snapshots_taken(declared: bool, tier: str) -> str | None:
    """Integrated storage holds every secret and transit key, and Vault's open source edition takes no
    snapshot by itself: outside dev a job takes them on a schedule."""
    if declared or tier == "dev":
        return None
    return (f"takes no Raft snapshots; {tier} requires them: the Raft data holds every secret and transit key, "
            "and Vault takes no snapshot by itself")


def alerts_declared(declared: bool, tier: str) -> str | None:
    """Outside dev, alert rules watch Vault: a sealed server, a lost leader or a failing snapshot must
    not be found by the users first."""
    if declared or tier == "dev":
        return None
    return (f"declares no alert rules; {tier} requires them: a sealed server or a failing snapshot would "
            "otherwise be found by the users")


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


# --- ACL policies: only the data plane of what the stack declares ---------------------------------

ADMIN_POLICIES = ("platform-admin", "vault-iac", "vault-snapshot")
"""The platform's own policies, beyond the data plane on purpose: people's break-glass, the IaC's
token, the snapshot job's (``SNAPSHOT_IDENTITY``: read ``sys/storage/raft/snapshot``). Their reach is
reported (``platformctl access``), never refused."""


@dataclass(frozen=True)
class DataPlane:
    """What a stack declares that an application's policy may reach, by mount path."""

    kv_mount: str | None
    """The KV v2 mount."""
    kv_secrets: frozenset[str]
    """Secret paths inside it (``production/api-service``)."""
    database_mount: str | None
    """The database secrets engine's mount."""
    database_roles: frozenset[str]
    """Dynamic roles (``<mount>/creds/<role>``)."""
    static_roles: frozenset[str]
    """Static roles (``<mount>/static-creds/<role>``)."""
    transit_mount: str | None
    """The transit mount."""
    transit_keys: frozenset[str]
    """Keys (``<mount>/<operation>/<key>``)."""
    pki_mounts: frozenset[str]
    """Every PKI mount (root and intermediate)."""
    pki_roles: frozenset[tuple[str, str]]
    """(mount, role) of the roles certificates are issued from (``<mount>/issue/<role>``)."""

    @property
    def environment_prefixes(self) -> frozenset[str]:
        """The first segment of every secret path: a stack keeps its secrets under its environment's
        prefix (``production/``), so a glob over it is as good as the whole mount."""
        return frozenset(path.split("/", 1)[0] for path in self.kv_secrets)


@dataclass(frozen=True)
class Refusal:
    """Why a policy rule is refused, and what to do instead."""

    problem: str
    """Names the policy and the rule."""
    fix: str
    """What to grant instead."""


TRANSIT_DATA_OPERATIONS = ("encrypt", "decrypt", "rewrap", "sign", "verify", "hmac")
"""Transit endpoints that use a key without changing it (``<mount>/<operation>/<key>``)."""
_DATA_PLANE = ("read declared KV secrets (<kv>/data/<secret>; <kv>/metadata/<secret> only where needed), "
               "read <database>/creds/<role> or <database>/static-creds/<role> of declared roles, update "
               "<transit>/<operation>/<key> of declared keys, update <pki>/issue/<role> or <pki>/sign/<role> "
               "of declared PKI roles")
_FIX = f"grant only the data plane of what the stack declares: {_DATA_PLANE}"


def data_plane_refusal(policy: str, path: str, capabilities: Iterable[str], plane: DataPlane) -> Refusal | None:
    """``None`` when rule ``path`` with ``capabilities`` of policy ``policy`` reaches only the data plane
    of what ``plane`` declares (see the README's "What the guardrails refuse"); else why not.

    A ``deny`` never widens access and always passes."""
    caps = tuple(dict.fromkeys(capabilities))
    if "deny" in caps:
        return None
    rule = f"policy {policy!r} grants {list(caps)} on {path!r}"

    def refuse(problem: str, fix: str = _FIX) -> Refusal:
        return Refusal(f"{rule}: {problem}", fix)

    if "sudo" in caps:
        return refuse("sudo is for the platform's own administration (platform-admin) only")
    mount, _, rest = path.partition("/")
    area, slash, target = rest.partition("/")
    if mount in ("sys", "auth", "identity"):
        what = ("token creation" if path.startswith("auth/token/create") else
                "policy writing" if path.startswith(("sys/policy", "sys/policies")) else
                f"Vault's control plane ({mount}/)")
        return refuse(f"{what} is never an application's: it lets the holder grant itself more access")
    if grants_whole_mount(path):
        return refuse("it reaches a whole mount or all of its secret material",
                      "grant the exact paths the holder needs")
    granted = set(caps)
    if mount == plane.kv_mount:
        return _kv_refusal(refuse, area, slash, target, granted, plane)
    if mount == plane.database_mount:
        roles = {"creds": plane.database_roles, "static-creds": plane.static_roles}.get(area)
        if roles is None or not slash:
            return refuse("database configuration (connections, roles, root rotation) is the IaC's")
        return _object_refusal(refuse, "database role", target, roles, granted, {"read"})
    if mount == plane.transit_mount:
        keys_path = area == "datakey" and target.partition("/")[0] in ("plaintext", "wrapped")
        if area not in TRANSIT_DATA_OPERATIONS and not keys_path:
            return refuse("transit key configuration, rotation, deletion, export and backup are the IaC's")
        key = target.partition("/")[2] if area == "datakey" else target
        return _object_refusal(refuse, "transit key", key, plane.transit_keys, granted, {"create", "update"})
    if mount in plane.pki_mounts:
        if area not in ("issue", "sign") or not slash:
            return refuse("PKI CA operations (generating or signing intermediates, sign-verbatim, root "
                          "operations, issuers, configuration) are the IaC's or the platform team's")
        roles = frozenset(role for role_mount, role in plane.pki_roles if role_mount == mount)
        return _object_refusal(refuse, "PKI role", target, roles, granted, {"create", "update"})
    return refuse(f"{mount!r} is not a mount this stack declares: the rule reaches nothing the stack declares")


def _kv_refusal(refuse: Callable[..., Refusal], area: str, slash: str, target: str, granted: set[str],
                plane: DataPlane) -> Refusal | None:
    if area not in ("data", "metadata", "delete", "undelete", "destroy") or not slash:
        return refuse("KV mount configuration is the IaC's")
    literal = literal_prefix(target)
    if literal != target and any(f"{prefix}/".startswith(literal) for prefix in plane.environment_prefixes):
        return refuse("a glob over the environment's path prefix reaches every secret of the environment, "
                      "which is as good as the whole mount", "grant the exact secret paths the holder needs")
    allowed = {"data": {"read"}, "metadata": {"read"}}.get(area, set())
    single = {"data": {"delete"}, "metadata": {"delete"}}.get(area, {"update"})
    if granted & single and literal != target:
        return refuse("deleting or destroying KV versions or metadata is allowed on a single declared "
                      "secret only, never through a glob", "name the one declared secret")
    if granted - allowed - single:
        return refuse(f"{sorted(granted - allowed - single)} on {area}/ is not reading a secret: writing "
                      "secrets is the IaC's (their values are declared in the stack)",
                      "grant read on <kv>/data/<secret>")
    return _object_refusal(refuse, "KV secret", target, plane.kv_secrets, granted, granted)


def _object_refusal(refuse: Callable[..., Refusal], what: str, target: str, declared: frozenset[str],
                    granted: set[str], allowed: set[str]) -> Refusal | None:
    if not target or _only_globs(target):
        return refuse(f"it reaches every {what} of the mount", f"name the {what}s the holder needs")
    if target not in declared and not (literal_prefix(target) != target and any(map(vault_acl.matcher(target),
                                                                                  declared))):
        listed = ", ".join(sorted(declared)[:10]) or "none"
        return refuse(f"{what} {target!r} is not declared by the stack",
                      f"declare it, or use a declared one ({listed})")
    if granted - allowed:
        return refuse(f"{sorted(granted - allowed)} is more than using a {what} needs",
                      f"grant only {sorted(allowed)}")
    return None


def literal_prefix(pattern: str) -> str:
    """The part of a policy path before its first ``*`` or ``+``."""
    cut = [index for index in (pattern.find("*"), pattern.find("+")) if index >= 0]
    return pattern[:min(cut)] if cut else pattern


def default_service_account(service_account: str) -> str | None:
    """An application's Kubernetes auth role never binds the namespace's ``default`` service account,
    which every pod without an account of its own runs as."""
    if service_account != "default":
        return None
    return ("binds the namespace's 'default' service account, which every pod without its own account "
            "runs as: each of them would get the application's access")
JWT_REQUIRED_CLAIMS = ("repository", "repository_id", "repository_owner_id", "environment")
"""Claims every GitHub Actions JWT role binds exactly: which repository, by name and by GitHub's ids of
it and its owner (a renamed or re-created repository keeps the name, never the id), and which GitHub
Environment (whose protection rules decide which branches and reviewers may reach it)."""


def jwt_claim_problem(claim: str, value: object) -> str | None:
    """A bound claim holds one exact, non-empty value: no ``*`` (a glob under ``glob``, and never what
    a job's token carries under ``string``)."""
    if not isinstance(value, str) or not value:
        return f"binds no exact {claim!r} claim, so a job of any {claim} could log in"
    if "*" in value:
        return f"the {claim!r} claim {value!r} holds a glob ('*')"
    return None


def jwt_role_binding(bound_claims: Mapping[str, object], claims_type: str, audiences: Sequence[str]) -> str | None:
    """A JWT role admits one repository's jobs in one GitHub Environment, by exact values: the claims
    are compared as strings (``bound_claims_type`` ``string``; ``glob`` would let ``*`` match any
    repository or environment), each required claim is bound, none holds a ``*``, and the token must
    carry the stack's audience."""
    if claims_type != "string":
        return (f"bound_claims_type is {claims_type!r}: claims must be compared as exact strings, "
                "or '*' would match any repository or environment")
    for claim in (*JWT_REQUIRED_CLAIMS, *sorted(set(bound_claims) - set(JWT_REQUIRED_CLAIMS))):
        if (problem := jwt_claim_problem(claim, bound_claims.get(claim))) is not None:
            return problem
    if not [audience for audience in audiences if audience]:
        return "binds no audience, so a token GitHub issued for any other service would be accepted"
    return None


READ_ONLY_POLICIES = ("operations-readonly", "vault-preview")
"""Hand-written policies that read the control plane (operators, through OIDC; CI's preview role, which
runs a pull request's unmerged code) and must stay read-only; checked by :func:`read_only_problem`
instead of the data-plane rule."""
_WRITES = frozenset(vault_acl.CAPABILITIES) - {"read", "list"}


def read_only_problem(name: str, path_rules: Sequence[vault_acl.Rule]) -> str | None:
    """What makes policy ``name`` more than read-only access to configuration, or ``None``: a capability
    that writes (create, update, patch, delete, ...; ``sudo`` beside one of them: beside read or list
    alone it only lets the token read a root-protected path such as ``sys/audit``, as a refresh does,
    since sudo grants no operation of its own) or a read of secret values or credentials
    (a path in an area of :data:`SECRET_AREAS`, or a glob over a mount or its areas). Each rule's path
    is asked of the policy's ACL, with Vault's semantics (a ``deny`` elsewhere takes its grant away)."""
    acl = vault_acl.Acl({name: path_rules})
    for rule in path_rules:
        # The path a request would name: a glob stands for some segment.
        probe = rule.path.replace("+", "x").rstrip("*") or "x"
        granted = acl.capabilities(probe)
        sudo_to_read = granted & {"read", "list"} and not granted & (_WRITES - {"sudo"})
        writes = [] if sudo_to_read else sorted(granted & _WRITES)
        if writes:
            return f"grants {', '.join(writes)} on {rule.path!r}"
        first, _, rest = rule.path.partition("/")
        area = rest.split("/")[0]
        globbed = any(glob in part for part in (first, area) for glob in "*+")
        if granted and (globbed or area in SECRET_AREAS):
            return f"reads secret values or credentials at {rule.path!r}"
    return None


# --- the configuration layer's stateful resources --------------------------------------------------

REMOVAL_PATH = re.compile(r"sys/(mounts|auth|audit)/[a-z0-9][-_a-z0-9]*|[a-z0-9][-_a-z0-9]*/keys/[a-z0-9][-_a-z0-9]*")
"""What a removal statement (``vault-platform:removals``) names: a mount (``sys/mounts/<path>``), an
auth method (``sys/auth/<path>``), an audit device (``sys/audit/<path>``) or a transit key
(``<mount>/keys/<name>``), by the Vault API path that deletes it."""

# Resource types that hold state Vault cannot give back once deleted, and how each is named in a
# removal statement: (type token, property naming the path or the mount, the statement's form).
_STATEFUL_CONFIGURATION: dict[str, tuple[str, str]] = {
    "vault:index/mount:Mount": ("path", "sys/mounts/{}"),
    "vault:index/authBackend:AuthBackend": ("path", "sys/auth/{}"),
    "vault:jwt/authBackend:AuthBackend": ("path", "sys/auth/{}"),
    "vault:index/audit:Audit": ("path", "sys/audit/{}"),
    # A CA's key and certificate live in its mount: removing the mount is how a CA goes.
    "vault:pkiSecret/secretBackendRootCert:SecretBackendRootCert": ("backend", "sys/mounts/{}"),
    "vault:pkiSecret/secretBackendIntermediateCertRequest:SecretBackendIntermediateCertRequest": (
        "backend", "sys/mounts/{}"),
    "vault:pkiSecret/secretBackendIntermediateSetSigned:SecretBackendIntermediateSetSigned": (
        "backend", "sys/mounts/{}"),
    "vault:pkiSecret/secretBackendRootSignIntermediate:SecretBackendRootSignIntermediate": (
        "backend", "sys/mounts/{}"),
}
TRANSIT_KEY = "vault:transit/secretBackendKey:SecretBackendKey"


def stateful_configuration_path(type_token: str, props: dict[str, object]) -> str | None:
    """The removal statement that covers a resource of the configuration layer that holds state, or
    ``None`` for any other resource. A transit key's own statement is ``<mount>/keys/<name>``."""
    if type_token == TRANSIT_KEY:
        return f"{props.get('backend')}/keys/{props.get('name')}"
    if type_token not in _STATEFUL_CONFIGURATION:
        return None
    key, form = _STATEFUL_CONFIGURATION[type_token]
    return form.format(props.get(key) or props.get("type"))


def removal_stated(path: str, removals: Iterable[str]) -> bool:
    """``path`` (see :func:`stateful_configuration_path`) is stated for removal: itself, or, for a
    transit key, its whole mount."""
    stated = set(removals)
    mount, keys, _ = path.partition("/keys/")
    return path in stated or (bool(keys) and f"sys/mounts/{mount}" in stated)
