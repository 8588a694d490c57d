"""The guardrails: what no stack of vault-platform may deploy, checked on what the program sends to the
engine (``pulumi preview`` / ``pulumi up --policy-pack policies/guardrails``), independently of the
program's own spec validation.

Every check is a ``pulumi_policy`` policy in :data:`POLICIES`; ``__main__.py`` only builds the pack
from them. The rules the spec enforces as well come from :mod:`vaultmodel.rules`, so that the two
can never disagree. A check reads resource properties as the engine sends them: camelCase keys,
numbers as floats, secrets wrapped (``{<signature key>: <secret signature>, "value": ...}``, recognised
by :func:`platformctl.core.declaration.is_secret`, the one implementation of the wire form) or as
``pulumi_policy.Secret``.

The environment (``dev``, ``staging``, ``prod``) is the stack's ``environment`` tag, else its name;
a stack that is neither gets the production rules.
"""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
    StackValidationPolicy,
)

from environment import PROJECT, SpecError
from environment.policies import data_plane
from platformctl.adapters import engine
from platformctl.adapters.stackfile import environment_of, read_stack, stack_spec
from platformctl.core import declaration
from platformctl.core.stack_config import StackConfig
from render.acl import PolicyFileError, parse_policy
from vaultmodel import access, rules, vault_acl
from vaultmodel.durations import HOUR

TEAM_STACK = "a team's stack declares its applications alone: its environment's stack holds the rest"

TIERS = ("dev", "staging", "prod")
# Vault's system default for a TTL left unset (0): the mount's max lease TTL, 32 days.
VAULT_DEFAULT_TTL = 768 * HOUR

RELEASE = "kubernetes:helm.sh/v3:Release"
AUTH_ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
JWT_ROLE = "vault:jwt/authBackendRole:AuthBackendRole"
JWT_BACKEND = "vault:jwt/authBackend:AuthBackend"
DATABASE_ROLE = "vault:database/secretBackendRole:SecretBackendRole"
DATABASE_CONNECTION = "vault:database/secretBackendConnection:SecretBackendConnection"
KV_CONFIG = "vault:kv/secretBackendV2:SecretBackendV2"
ACL_POLICY = "vault:index/policy:Policy"
AUDIT = "vault:index/audit:Audit"
VAULT_PROVIDER = "pulumi:providers:vault"
MOUNT = "vault:index/mount:Mount"
PKI_ROLE = "vault:pkiSecret/secretBackendRole:SecretBackendRole"
CRONJOB = "kubernetes:batch/v1:CronJob"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
SNAPSHOT_SAVE = "vault operator raft snapshot save"
NAMESPACE = "kubernetes:core/v1:Namespace"
STATEFUL = (RELEASE, NAMESPACE)
"""The cluster layer's resources that hold state: protected in prod."""

# A property whose name ends like one of these holds a credential (the name is compared lowercased,
# without '_' and '-': ``adminPassword``, ``token``, ``apiKey``, ``VAULT_TOKEN``, ``tokenReviewerJwt``),
# also as a provider's write-only variant (``passwordWo``).
_CREDENTIAL_NAME = re.compile(r"(password|passwd|passphrase|secret|token|apikey|privatekey|secretkey|accesskey|"
                              r"jwt|credentials?)(wo)?$")
# Properties that hold credentials whatever their name: (resource type, property).
_CREDENTIAL_PROPERTIES = frozenset({("vault:kv/secretV2:SecretV2", "dataJson")})
# ``scheme://user:password@`` with a literal password (a ``{{password}}`` template is fine).
_URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:(?!\{\{)[^@/\s]+@")

_TOKEN_CAPS = {
    "maxTokenTtl": {"type": "integer", "minimum": 1, "default": rules.TOKEN_TTL_CAP,
                    "description": "Cap on a Kubernetes auth role's tokenTtl, in seconds (default 4h)."},
    "maxTokenMaxTtl": {"type": "integer", "minimum": 1, "default": rules.TOKEN_MAX_TTL_CAP,
                       "description": "Cap on a Kubernetes auth role's tokenMaxTtl, in seconds (default 24h)."},
}
_DATABASE_CAPS = {
    "maxTtl": {"type": "integer", "minimum": 1, "default": rules.DATABASE_MAX_TTL_CAP,
               "description": "Cap on a database role's maxTtl, in seconds (default 24h)."},
}
_ACL_EXEMPTIONS = {
    "adminPolicies": {
        "type": "array", "items": {"type": "string"}, "default": list(rules.ADMIN_POLICIES),
        "description": "Policies powerful on purpose, whose reach is reported (platformctl access), not refused: "
                       "the platform team's break-glass administration and the IaC's own.",
    },
}
_REQUIRED_TAGS = {
    "requiredTags": {"type": "array", "items": {"type": "string"}, "default": ["owner", "environment"],
                     "description": "Stack tags every stack carries."},
}


# --- reading what the engine sends --------------------------------------------------------------

def is_secret(value: Any) -> bool:
    """A secret, in the engine's wire form or as the policy SDK's :class:`Secret`."""
    return isinstance(value, Secret) or declaration.is_secret(value)


def reveal(value: Any) -> Any:
    """``value`` with a secret wrapper (not nested ones) removed."""
    if isinstance(value, Secret):
        return value.value
    if is_secret(value):
        return value["value"]
    return value


def lookup(props: Mapping[str, Any], path: str) -> Any:
    """The property at dotted ``path`` (``values.server.ha.replicas``), or ``None``."""
    value: Any = props
    for step in path.split("."):
        value = reveal(value)
        if not isinstance(value, Mapping) or step not in value:
            return None
        value = value[step]
    return reveal(value)


def whole(value: Any) -> int | None:
    """A whole number the engine sent as an int, a float (``3.0``) or a digit string; else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def environment(stack_tags: Mapping[str, str], urn: str) -> str:
    """``dev``, ``staging`` or ``prod``: the stack's environment's name (from a URN of the form
    ``urn:pulumi:<stack>::<project>::...``; a team's stack ``prod.payments`` is prod's) when it is one,
    as the spec decides it, so that a stack file cannot tag prod into dev's rules; else the
    ``environment`` tag; else the production rules."""
    stack = environment_of(_stack_name(urn))
    if stack in TIERS:
        return stack
    tagged = stack_tags.get("environment")
    return str(tagged) if tagged in TIERS else "prod"


def _stack_name(urn: str) -> str:
    return urn.removeprefix("urn:pulumi:").split("::", 1)[0]


def stack_tags(args: ResourceValidationArgs | StackValidationArgs) -> dict[str, str]:
    """The stack's tags: the backend's, with its stack file's ``pulumi:tags`` over them. Pulumi Cloud
    merges the file's into the stack's at each update; a DIY backend (the deploys' S3 bucket) never
    does (pulumi/pulumi pkg/backend/stack.go ``GetMergedStackTags``, called by pkg/backend/httpstate
    alone), so the pack reads them from the file the CLI runs the program with, as the spec does."""
    urn = args.urn if isinstance(args, ResourceValidationArgs) else (args.resources[0].urn if args.resources else "")
    return {**args.stack_tags, **declared_tags(_stack_name(urn))}


@functools.cache
def stack_file(stack: str, root: Path = engine.ROOT) -> StackConfig | None:
    """The file the Pulumi CLI runs the program of ``stack`` with (a team's stack: its environment's),
    read once per run for every check that needs it; ``None`` for a stack without a file here."""
    try:
        return read_stack(stack, root) if stack else None
    except FileNotFoundError:
        return None


def declared_tags(stack: str, root: Path = engine.ROOT) -> Mapping[str, str]:
    """The stack file's ``pulumi:tags``."""
    config = stack_file(stack, root)
    return {str(key): str(value) for key, value in config.tags.items()} if config is not None else {}


@functools.cache
def environment_plane(stack: str, root: Path = engine.ROOT) -> rules.DataPlane | None:
    """What a team's stack's policies may reach: its environment's data plane, as the spec builds it
    (the mounts, and the secrets and roles of other stacks, are declared by the environment's stack and
    the other teams'); ``None`` when the stack file is missing or refused (the program refuses it too)."""
    config = stack_file(stack, root)
    if config is None:
        return None
    try:
        spec = stack_spec(config)
    except SpecError:
        return None
    return data_plane(spec.kv, spec.database, spec.transit, spec.pki)


def team_stack(args: StackValidationArgs) -> bool:
    """A team's stack (``prod.payments``): its applications alone; the environment's stack holds the rest."""
    return bool(args.resources) and "." in _stack_name(args.resources[0].urn)


def settings(args: ResourceValidationArgs | StackValidationArgs, schema: Mapping[str, Mapping[str, Any]],
             ) -> dict[str, Any]:
    """The policy's config: each schema default, overridden by what the stack's policy config sets."""
    configured = args.get_config() or {}
    return {key: configured.get(key, spec["default"]) for key, spec in schema.items()}


def _tier(args: ResourceValidationArgs) -> str:
    return environment(stack_tags(args), args.urn)


def _flag(value: Any) -> bool:
    return value is True or value == "true"


# --- staging and prod: the cluster --------------------------------------------------------------

def check_ha_raft(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Staging and prod run Vault in HA mode with integrated (Raft) storage, an odd number of voters, 3+."""
    tier = _tier(args)
    if args.resource_type != RELEASE or tier == "dev":
        return
    values = lookup(args.props, "values") or {}
    if not _flag(lookup(values, "server.ha.enabled")):
        report(f"Vault must run in HA mode in {tier}: set server.ha.enabled to true", None)
    if not _flag(lookup(values, "server.ha.raft.enabled")):
        report(f"Vault must use Raft storage in {tier}: set server.ha.raft.enabled to true", None)
    replicas = whole(lookup(values, "server.ha.replicas"))
    if replicas is None:
        report(f"server.ha.replicas is not set: {tier} needs an odd number of at least 3 (3 or 5)", None)
        return
    for problem in (rules.odd_replicas(replicas), rules.enough_replicas(replicas, tier)):
        if problem is not None:
            report(f"server.ha.replicas: {problem}; use 3 or 5", None)


def check_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Staging and prod serve Vault over TLS only."""
    if args.resource_type != RELEASE:
        return
    disabled = lookup(args.props, "values.global.tlsDisable")
    # The chart's own default is tlsDisable: true, so an unset value is plain HTTP too.
    problem = rules.tls_allowed(disabled is False or disabled == "false", _tier(args))
    if problem is not None:
        report(f"global.tlsDisable: {problem}; set it to false", None)


def check_injector(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Staging and prod run the agent injector, with a spare replica."""
    tier = _tier(args)
    if args.resource_type != RELEASE or tier == "dev":
        return
    values = lookup(args.props, "values") or {}
    if not _flag(lookup(values, "injector.enabled")):
        report(f"the agent injector must run in {tier}: set injector.enabled to true", None)
        return
    replicas = whole(lookup(values, "injector.replicas"))
    problem = rules.injector_replicas(1 if replicas is None else replicas, tier)  # the chart's default: 1
    if problem is not None:
        report(f"injector.replicas: {problem}; use 2 or more", None)


def check_disruption_budget(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Staging and prod give the Vault servers a PodDisruptionBudget, so a node drain keeps a quorum."""
    tier = _tier(args)
    if args.resource_type != RELEASE or tier == "dev":
        return
    if not _flag(lookup(args.props, "values.server.ha.disruptionBudget.enabled")):
        report(f"the Vault servers need a disruption budget in {tier}: set "
               "server.ha.disruptionBudget.enabled to true", None)


def check_chart_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Staging and prod install an exact chart version, so an upgrade is a reviewed change."""
    if args.resource_type != RELEASE or _tier(args) == "dev":
        return
    version = lookup(args.props, "version")
    if not isinstance(version, str) or not version:
        report("the chart version is not pinned: set an exact version such as 0.34.1", None)
        return
    problem = rules.exact_version(version)
    if problem is not None:
        report(f"chart version {problem}: pin an exact version such as 0.34.1", None)


# --- every stack: access ------------------------------------------------------------------------

def check_auth_bindings(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A Kubernetes auth role binds named service accounts in named namespaces, never ``*``."""
    if args.resource_type != AUTH_ROLE:
        return
    for prop, what in (("boundServiceAccountNames", "service account"),
                       ("boundServiceAccountNamespaces", "namespace")):
        for value in lookup(args.props, prop) or ():
            problem = rules.wildcard_binding(what, str(reveal(value)))
            if problem is not None:
                report(f"{prop}: {problem}; bind the application's own {what}", None)
    for value in lookup(args.props, "boundServiceAccountNames") or ():
        if (problem := rules.default_service_account(str(reveal(value)))) is not None:
            report(f"boundServiceAccountNames: {problem}; give the application a service account of its own", None)


def check_jwt_role_claims(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A JWT role (GitHub Actions' login) binds exact repository (name and ids) and environment claims,
    compared as strings (``boundClaimsType`` ``string``, no ``*``), and an audience; OIDC roles (people)
    are bound by their identity provider's client instead."""
    if args.resource_type != JWT_ROLE or lookup(args.props, "roleType") == "oidc":
        return
    claims = lookup(args.props, "boundClaims") or {}
    problem = rules.jwt_role_binding({key: reveal(value) for key, value in claims.items()},
                                     str(lookup(args.props, "boundClaimsType") or "string"),
                                     [str(reveal(value)) for value in lookup(args.props, "boundAudiences") or ()])
    if problem is not None:
        report(f"role {lookup(args.props, 'roleName')!r} {problem}: bind the exact repository (name, "
               "repository_id, repository_owner_id) and GitHub Environment with boundClaimsType 'string', "
               "and the stack's audience", None)


def _ttl(props: Mapping[str, Any], name: str) -> int:
    """A TTL property in seconds; unset or 0 is Vault's default (32 days)."""
    return whole(lookup(props, name)) or VAULT_DEFAULT_TTL


def check_token_ttls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A Kubernetes auth role's tokens are short-lived: tokenTtl and tokenMaxTtl set and under the caps."""
    if args.resource_type != AUTH_ROLE:
        return
    caps = settings(args, _TOKEN_CAPS)
    ttl, max_ttl = _ttl(args.props, "tokenTtl"), _ttl(args.props, "tokenMaxTtl")
    for problem in (rules.ttl_cap("tokenTtl", ttl, caps["maxTokenTtl"]),
                    rules.ttl_cap("tokenMaxTtl", max_ttl, caps["maxTokenMaxTtl"]),
                    rules.ttl_order("tokenTtl", ttl, "tokenMaxTtl", max_ttl)):
        if problem is not None:
            report(f"{problem} (an unset TTL is Vault's default of 32 days)", None)


def check_database_ttls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A database role's credentials live at most a day: defaultTtl <= maxTtl <= the cap."""
    if args.resource_type != DATABASE_ROLE:
        return
    cap = settings(args, _DATABASE_CAPS)["maxTtl"]
    default, maximum = _ttl(args.props, "defaultTtl"), _ttl(args.props, "maxTtl")
    for problem in (rules.ttl_order("defaultTtl", default, "maxTtl", maximum), rules.ttl_cap("maxTtl", maximum, cap)):
        if problem is not None:
            report(f"{problem} (an unset TTL is Vault's default of 32 days)", None)


def check_database_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Outside dev, Vault verifies the PostgreSQL server it hands the admin password to: the connection
    URL's sslmode is verify-full (or verify-ca with the connection's own tls_ca; libpq's default when
    unset is prefer), at a fully qualified host name."""
    if args.resource_type != DATABASE_CONNECTION:
        return
    url = reveal(lookup(args.props, "postgresql.connectionUrl"))
    if not isinstance(url, str):
        return
    parts = urllib.parse.urlsplit(url)
    ssl_mode = urllib.parse.parse_qs(parts.query).get("sslmode", ["prefer"])[0]
    has_ca = bool(reveal(lookup(args.props, "postgresql.tlsCa")))
    tier = _tier(args)
    for problem in (rules.database_tls(ssl_mode, has_ca, tier), rules.database_host(parts.hostname or "", tier)):
        if problem is not None:
            report(f"postgresql.connectionUrl: {problem}", None)


def plaintext_credentials(resource_type: str, props: Mapping[str, Any]) -> Iterator[str]:
    """Dotted paths of the credentials in ``props`` that are not secrets: a plain string under a
    credential-like name (password, token, secret, key, ...), or a URL with a literal password."""
    def walk(value: Any, path: str, name: str) -> Iterator[str]:
        if is_secret(value):
            return
        if isinstance(value, Mapping):
            for key, item in value.items():
                yield from walk(item, f"{path}.{key}" if path else str(key), str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from walk(item, f"{path}[{index}]", name)
        elif isinstance(value, str) and value and value not in ("true", "false"):
            credential = bool(_CREDENTIAL_NAME.search(name.lower().replace("_", "").replace("-", "")))
            if credential or (resource_type, path) in _CREDENTIAL_PROPERTIES or _URL_PASSWORD.search(value):
                yield path

    if resource_type == VAULT_PROVIDER:
        # The Vault provider's login blocks (authLoginJwt, ...) arrive JSON-encoded: check their fields
        # (a jwt in one is a credential; its role and mount are not).
        props = {key: _json_object(value) if key.startswith("authLogin") else value for key, value in props.items()}
    yield from walk(props, "", "")


def _json_object(value: Any) -> Any:
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return decoded if isinstance(decoded, dict) else value
    return value


def check_plaintext_secrets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """No password, token or key is passed in plaintext: each must be a Pulumi secret."""
    if type(args.props).__module__.startswith("pulumi_policy"):
        # pulumi-policy's analyzer decrypts secrets before a policy sees them (pulumi/pulumi-policy#241),
        # so under the CLI a secret cannot be told from plaintext. The test suite runs this check on
        # what the program declares, with secrets still marked.
        args.not_applicable("the policy SDK hands secrets to policies decrypted; checked by the test suite")
    for path in plaintext_credentials(args.resource_type, args.props):
        report(f"{path} is passed in plaintext: make it a secret (pulumi config set --secret, "
               "{fromSecret: <key>} in the spec, or pulumi.Output.secret)", None)


# --- prod: state --------------------------------------------------------------------------------

def check_kv_cas(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """In prod, the KV v2 mount requires check-and-set on every write."""
    if args.resource_type != KV_CONFIG:
        return
    problem = rules.cas_required(_flag(lookup(args.props, "casRequired")), _tier(args))
    if problem is not None:
        report(f"casRequired: {problem}; set casRequired to true", None)


def check_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """In prod, the cluster layer's resources that hold state (the Helm release, Vault's namespace) are
    protected."""
    if args.resource_type not in STATEFUL or _tier(args) != "prod":
        return
    if not args.opts.protect:
        report(f"{args.name} holds state and must be protected in prod: declare it with "
               "pulumi.ResourceOptions(protect=True)", None)


# --- every stack: what the audit log shows, what a PKI role issues ------------------------------

def check_audit_clear_fields(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """No mount has a field that can carry a secret or a private key logged in clear in the audit log."""
    if args.resource_type != MOUNT:
        return
    for key in ("auditNonHmacRequestKeys", "auditNonHmacResponseKeys"):
        for field in lookup(args.props, key) or []:
            if (problem := rules.secret_audit_field(str(field))) is not None:
                report(f"{key}: {problem}; remove it from the list", None)


def check_pki_domains(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A PKI role issues only for names the organisation owns: no public suffix, no single label with
    subdomains allowed."""
    if args.resource_type != PKI_ROLE:
        return
    subdomains = _flag(lookup(args.props, "allowSubdomains"))
    for domain in lookup(args.props, "allowedDomains") or []:
        if (problem := rules.owned_domain(str(domain), subdomains)) is not None:
            report(f"allowedDomains: {problem}; list the organisation's own domains", None)


@functools.cache
def stated_removals(stack: str, root: Path = engine.ROOT) -> tuple[str, ...]:
    """What the stack file states it removes (``vault-platform:removals``): the same file the Pulumi CLI
    runs the program with. A stack without a file here states nothing. Read once per run, not once per
    resource checked."""
    config = stack_file(stack, root)
    removals = (config.config.get(f"{PROJECT}:removals") or []) if config is not None else []
    return tuple(str(path) for path in removals) if isinstance(removals, list) else ()


def configuration_protection_problem(resource_type: str, props: Mapping[str, Any], protect: bool,
                                     removals: tuple[str, ...]) -> str | None:
    """Why a resource of the configuration layer that holds state may be deleted, or ``None``: it must
    be protected unless the stack states its removal."""
    path = rules.stateful_configuration_path(resource_type, {key: reveal(value) for key, value in props.items()})
    if path is None or protect or rules.removal_stated(path, removals):
        return None
    return (f"{path} holds state only Vault has (secrets, keys, a CA, the audit trail) and is not protected: "
            f"a plan could delete it. Declare it with pulumi.ResourceOptions(protect=True), or, to remove it, "
            f"state it in the stack's {PROJECT}:removals first")


def check_configuration_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """In every tier, the configuration layer's mounts, auth methods, audit devices, transit keys and CAs
    are protected, so that no plan deletes them (a lost login, a rename, a removed section), unless the
    stack states their removal (``vault-platform:removals``). A policy pack sees the resources a plan
    keeps, never the ones it deletes: the refusal itself is the engine's, which deletes no protected
    resource; this check makes sure every such resource is protected."""
    problem = configuration_protection_problem(args.resource_type, args.props, args.opts.protect,
                                               stated_removals(_stack_name(args.urn)))
    if problem is not None:
        report(problem, None)


# --- every stack: ACL policies ------------------------------------------------------------------

def acl_problems(name: str, text: str, admin_policies: frozenset[str], plane: rules.DataPlane) -> Iterator[str]:
    """What is wrong with ACL policy ``name``: a text Vault would not take, or (but for the admin
    policies) a rule reaching more than the data plane of what the stack declares."""
    try:
        parsed = parse_policy(text, f"policy {name!r}")
    except PolicyFileError as error:
        yield str(error)
        return
    if name in admin_policies:
        return
    if name in rules.READ_ONLY_POLICIES:  # control-plane reads on purpose; never a write or a secret
        if (problem := rules.read_only_problem(name, parsed)) is not None:
            yield f"policy {name!r} {problem}; fix: grant only read and list on configuration paths"
        return
    for rule in parsed:
        refusal = rules.data_plane_refusal(name, rule.path, rule.capabilities, plane)
        if refusal is not None:
            yield f"{refusal.problem}; fix: {refusal.fix}"


def check_acl_policies(args: StackValidationArgs, report: ReportViolation) -> None:
    """ACL policies grant only the data plane of what the stack declares: reading its KV secrets, its
    database roles' credentials, operations on its transit keys, issuing from its PKI roles. No
    sudo, nothing under sys/, auth/ or identity/, no CA operation, no key configuration, no glob over
    an environment or a mount. The admin policies (platform-admin, vault-iac) are exempt: their reach
    is reported by platformctl access. The read-only ones (operations-readonly, vault-preview) read
    configuration, and grant no write and no read of a secret value or a credential."""
    admin = frozenset(settings(args, _ACL_EXEMPTIONS)["adminPolicies"])
    plane = access.data_plane((resource.resource_type, resource.props) for resource in args.resources)
    if team_stack(args):
        plane = environment_plane(_stack_name(args.resources[0].urn)) or plane
    for resource in args.resources:
        if resource.resource_type != ACL_POLICY:
            continue
        name = str(lookup(resource.props, "name") or resource.name)
        for problem in acl_problems(name, str(lookup(resource.props, "policy") or ""), admin, plane):
            report(problem, resource.urn)


# --- the stack as a whole -----------------------------------------------------------------------

def check_stack_tags(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every stack says who owns it and which environment it is (``pulumi:tags`` in its stack file)."""
    tags = stack_tags(args)
    for tag in settings(args, _REQUIRED_TAGS)["requiredTags"]:
        if not tags.get(tag):
            report(f"the stack has no {tag!r} tag: add it under pulumi:tags in its stack file", None)
    tagged = tags.get("environment")
    if tagged and tagged not in TIERS:
        report(f"the environment tag {tagged!r} is not one of {', '.join(TIERS)}", None)
    stack = environment_of(_stack_name(args.resources[0].urn)) if args.resources else ""
    if tagged in TIERS and stack in TIERS and tagged != stack:
        report(f"the environment tag {tagged!r} contradicts the stack {stack!r}: tag it {stack!r}", None)


def declares_vault(args: StackValidationArgs) -> bool:
    """The stack talks to Vault: it declares a Vault provider. A new environment's first ``pulumi up``
    declares only the cluster (``clusterOnly``: Vault is not initialized), so no Vault resource."""
    return any(resource.resource_type == VAULT_PROVIDER for resource in args.resources)


def deploys_vault(args: StackValidationArgs) -> bool:
    """The stack deploys its Vault servers: it declares the chart's Helm release. A stack whose Vault is
    external (``vault-platform:externalVault``: HCP, VMs, another team's cluster) declares none."""
    return any(resource.resource_type == RELEASE for resource in args.resources)


EXTERNAL_VAULT = (f"the stack deploys no Vault server (no {RELEASE}; its Vault is external, "
                  f"{PROJECT}:externalVault)")


def check_audit_device(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every request to Vault is audited: an audit device in dev, at least two in staging and prod (not
    applicable before Vault is configured: a stack that declares no Vault provider has nothing to audit)."""
    if not declares_vault(args):
        args.not_applicable("the stack declares no Vault provider (Vault is not configured yet): "
                            "no Vault resource, nothing to audit")
    if team_stack(args):
        args.not_applicable(TEAM_STACK)
    urn = args.resources[0].urn if args.resources else ""
    count = sum(1 for resource in args.resources if resource.resource_type == AUDIT)
    if (problem := rules.audit_devices(count, environment(stack_tags(args), urn))) is not None:
        report(f"the stack {problem} ({AUDIT})", None)


def lease_problems(resources: list[tuple[str, Mapping[str, Any]]]) -> Iterator[str]:
    """Each (Kubernetes auth role, database role) pair where the role's tokens may read the database
    role's credentials (Vault's ACL semantics over the policies the role attaches) and the credentials'
    ``maxTtl`` outlives the tokens' ``tokenMaxTtl``."""
    policies: dict[str, tuple[vault_acl.PathRule, ...]] = {}
    for type_token, props in resources:
        if type_token == ACL_POLICY:
            name = str(reveal(props.get("name")))
            try:  # parsed once for every role that attaches it
                policies[name] = vault_acl.parse_rules(str(reveal(props.get("policy")) or ""), f"policy {name!r}")
            except vault_acl.PolicyParseError:
                continue  # acl-least-privilege reports it

    credentials = [(f"{reveal(props.get('backend'))}/creds/{reveal(props.get('name'))}", _ttl(props, "maxTtl"))
                   for type_token, props in resources if type_token == DATABASE_ROLE]
    for type_token, props in resources:
        if type_token != AUTH_ROLE or not credentials:
            continue
        attached = [str(reveal(name)) for name in lookup(props, "tokenPolicies") or ()]
        acl = vault_acl.Acl({**{name: policies[name] for name in attached if name in policies},
                             vault_acl.DEFAULT_POLICY_NAME: vault_acl.default_rules()})
        app = str(lookup(props, "roleName"))
        for path, max_ttl in credentials:
            if acl.allows("read", path) and (
                    problem := rules.lease_within_token(max_ttl, _ttl(props, "tokenMaxTtl"), app)) is not None:
                yield (f"{path}: maxTtl {problem}; lower the database role's maxTtl or raise the auth role's "
                       "tokenMaxTtl")


def check_database_leases(args: StackValidationArgs, report: ReportViolation) -> None:
    """No database role's credentials are renewed for longer than the tokens of an application that reads
    them live (a lease dies with the token that created it: the user would be dropped early)."""
    for problem in lease_problems([(resource.resource_type, resource.props) for resource in args.resources]):
        report(problem, None)


def _snapshot_jobs(args: StackValidationArgs) -> list[Any]:
    """The CronJobs whose pods run ``vault operator raft snapshot save``."""
    jobs = []
    for resource in args.resources:
        if resource.resource_type != CRONJOB:
            continue
        pod = lookup(resource.props, "spec.jobTemplate.spec.template.spec") or {}
        containers = [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
        if any(SNAPSHOT_SAVE in " ".join(str(part) for part in [*(c.get("command") or []), *(c.get("args") or [])])
               for c in containers):
            jobs.append(resource)
    return jobs


def check_raft_snapshots(args: StackValidationArgs, report: ReportViolation) -> None:
    """Staging and prod take Raft snapshots on a schedule: a CronJob runs ``vault operator raft snapshot
    save``, one run at a time (not applicable before Vault is configured: the job logs in to Vault; nor
    to an external Vault's stack that takes none: its backups are its operator's)."""
    if not declares_vault(args):
        args.not_applicable("the stack declares no Vault provider (Vault is not configured yet): no Vault to "
                            "take snapshots of")
    if team_stack(args):
        args.not_applicable(TEAM_STACK)
    urn = args.resources[0].urn if args.resources else ""
    jobs = _snapshot_jobs(args)
    if not jobs and not deploys_vault(args):
        args.not_applicable(f"{EXTERNAL_VAULT}: its operator backs it up")
    if (problem := rules.snapshots_taken(bool(jobs), environment(stack_tags(args), urn))) is not None:
        report(f"the stack {problem} (no {CRONJOB} runs `{SNAPSHOT_SAVE}`)", None)
    for job in jobs:
        if lookup(job.props, "spec.concurrencyPolicy") != "Forbid":
            report(f"the Raft snapshot CronJob {job.name} may start a run while one is going: set "
                   "spec.concurrencyPolicy to Forbid", job.urn)


def check_alert_rules(args: StackValidationArgs, report: ReportViolation) -> None:
    """Staging and prod declare alert rules for Vault (a Prometheus operator PrometheusRule); not applicable
    to an external Vault's stack: the rules watch the servers and volumes this program deploys."""
    if not deploys_vault(args):
        args.not_applicable(f"{EXTERNAL_VAULT}: its operator watches it")
    urn = args.resources[0].urn if args.resources else ""
    declared = any(resource.resource_type == PROMETHEUS_RULE for resource in args.resources)
    if (problem := rules.alerts_declared(declared, environment(stack_tags(args), urn))) is not None:
        report(f"the stack {problem} ({PROMETHEUS_RULE})", None)


# --- the pack's policies ------------------------------------------------------------------------

Validate = Callable[[Any, ReportViolation], None]


def _resource(name: str, validate: Validate, schema: Mapping[str, Any] | None = None) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name, description=(validate.__doc__ or "").strip(), validate=validate,
        config_schema=PolicyConfigSchema(properties=dict(schema)) if schema else None)


POLICIES = (
    _resource("vault-ha-raft", check_ha_raft),
    _resource("vault-tls", check_tls),
    _resource("vault-injector", check_injector),
    _resource("vault-disruption-budget", check_disruption_budget),
    _resource("chart-version-pinned", check_chart_pinned),
    _resource("kubernetes-auth-bindings", check_auth_bindings),
    _resource("jwt-role-claims", check_jwt_role_claims),
    _resource("token-ttl-caps", check_token_ttls, _TOKEN_CAPS),
    _resource("database-role-ttls", check_database_ttls, _DATABASE_CAPS),
    _resource("database-tls", check_database_tls),
    _resource("no-plaintext-secrets", check_plaintext_secrets),
    _resource("kv-check-and-set", check_kv_cas),
    _resource("protect-stateful", check_protected),
    _resource("protect-configuration", check_configuration_protected),
    _resource("audit-clear-fields", check_audit_clear_fields),
    _resource("pki-owned-domains", check_pki_domains),
    StackValidationPolicy(
        name="acl-least-privilege", description=(check_acl_policies.__doc__ or "").strip(),
        validate=check_acl_policies, config_schema=PolicyConfigSchema(properties=dict(_ACL_EXEMPTIONS))),
    StackValidationPolicy(
        name="stack-tags", description=(check_stack_tags.__doc__ or "").strip(), validate=check_stack_tags,
        config_schema=PolicyConfigSchema(properties=dict(_REQUIRED_TAGS))),
    StackValidationPolicy(
        name="audit-device", description=(check_audit_device.__doc__ or "").strip(), validate=check_audit_device),
    StackValidationPolicy(
        name="database-leases", description=(check_database_leases.__doc__ or "").strip(),
        validate=check_database_leases),
    StackValidationPolicy(
        name="raft-snapshots", description=(check_raft_snapshots.__doc__ or "").strip(),
        validate=check_raft_snapshots),
    StackValidationPolicy(
        name="alert-rules", description=(check_alert_rules.__doc__ or "").strip(), validate=check_alert_rules),
)
"""Every policy of the pack, mandatory unless it says otherwise."""


def policy(name: str) -> ResourceValidationPolicy | StackValidationPolicy:
    """The pack's policy called ``name``."""
    for candidate in POLICIES:
        if candidate.name == name:
            return candidate
    raise KeyError(name)
