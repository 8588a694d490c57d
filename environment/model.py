"""The environment spec: one validated, immutable model of a stack's configuration.

Built only by :func:`environment.load_spec`; every component takes its part of it. Durations are
whole seconds. Secrets never live here: a field that needs one holds the *name* of the stack config
key that does (set with ``pulumi config set --secret``), and the component reads it with
``Config.require_secret``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from vaultmodel import rules

Tier = Literal["dev", "staging", "prod"]
"""Which rules apply: ``dev`` may run a single replica without TLS; ``staging`` and ``prod`` may not."""


@dataclass(frozen=True)
class AutoUnseal:
    """Auto-unseal through AWS KMS (``seal "awskms"``); Vault reaches KMS through IRSA."""

    region: str
    """AWS region of the KMS key, e.g. ``eu-west-1``."""
    kms_key_id: str
    """Key id, ARN or ``alias/...`` of the symmetric ENCRYPT_DECRYPT key that wraps the root key."""
    role_arn: str
    """IAM role the Vault service account assumes (``eks.amazonaws.com/role-arn``)."""


@dataclass(frozen=True)
class Tls:
    """The server's TLS listener and where its certificate comes from."""

    enabled: bool
    """Serve the API and cluster traffic over TLS; only the ``dev`` tier may turn it off."""
    secret_name: str
    """Kubernetes secret (``tls.crt``, ``tls.key``, ``ca.crt``) mounted into every server pod."""
    cert_manager_issuer: str | None
    """When set, a cert-manager ``Certificate`` from this ``ClusterIssuer`` fills ``secret_name``;
    when unset, the secret is provisioned out of band before ``pulumi up``."""
    ca_secret_name: str
    """Secret holding ``ca.crt`` in each application namespace, for the injected agent to trust Vault."""
    extra_dns_names: tuple[str, ...] = ()
    """Further names the certificate covers, e.g. the internal load balancer CI reaches Vault at."""


@dataclass(frozen=True)
class Resources:
    """Kubernetes requests and limits of one container."""

    cpu_request: str
    """e.g. ``250m``."""
    memory_request: str
    """e.g. ``256Mi``."""
    cpu_limit: str
    """e.g. ``1``."""
    memory_limit: str
    """e.g. ``1Gi``."""


@dataclass(frozen=True)
class RaftAutopilot:
    """Raft autopilot (``sys/storage/raft/autopilot/configuration``): a server gone longer than the
    threshold loses its Raft vote, but never below ``min_quorum`` voters."""

    cleanup_dead_servers: bool
    """Remove dead servers' votes; on with 3 or more replicas (Vault refuses it with ``min_quorum``
    below 3), off for a single server."""
    dead_server_last_contact_threshold: int
    """Seconds without contact with the leader after which a server counts as dead (at least 60)."""
    min_quorum: int
    """The replicas: autopilot never prunes below them, so only servers beyond the StatefulSet's
    pods (after a scale-down) lose their vote, never a pod the StatefulSet brings back."""


@dataclass(frozen=True)
class Cluster:
    """The Vault servers and the agent injector: the Helm release of the official chart."""

    namespace: str
    """Kubernetes namespace the release lives in."""
    release_name: str
    """Helm release name; also the prefix of pod and service names (``<release>-0``)."""
    chart_version: str
    """Exact chart version, e.g. ``0.34.1``; never a range."""
    replicas: int
    """Raft voters; odd, and at least 3 outside ``dev``."""
    tls: Tls
    """TLS listener settings."""
    auto_unseal: AutoUnseal | None
    """KMS auto-unseal, or ``None`` for Shamir unseal keys."""
    injector_replicas: int
    """Agent injector replicas; at least 2 outside ``dev``."""
    data_storage: str
    """Size of each server's Raft data volume, e.g. ``10Gi``."""
    audit_storage: str
    """Size of each server's audit log volume."""
    storage_class: str | None
    """Storage class of both volumes; ``None`` takes the cluster default."""
    server_resources: Resources
    """Requests and limits of each Vault server."""
    injector_resources: Resources
    """Requests and limits of each injector replica."""
    autopilot: RaftAutopilot
    """Raft autopilot: dead-server cleanup with a threshold, minimum quorum the replicas."""


@dataclass(frozen=True)
class ExternalVault:
    """A Vault this stack does not deploy (``vault-platform:externalVault``): HCP Vault Dedicated, a Vault on
    VMs, another team's cluster. The stack declares no server object, only Vault's configuration, and
    Vault reviews the application cluster's service account tokens from outside it."""

    kubernetes_host: str
    """The application cluster's API server as Vault reaches it (``https://...``): the Kubernetes auth
    method's ``kubernetes_host``."""
    kubernetes_ca_cert: str
    """PEM CA that signed that API server's certificate (``kubernetes_ca_cert``)."""
    token_reviewer_jwt_key: str
    """Stack secret holding the JWT Vault calls the TokenReview API with: a service account of the
    application cluster bound to ``system:auth-delegator`` (``token_reviewer_jwt``)."""
    raft: bool
    """Vault stores its data in integrated Raft storage: only then is autopilot declared (and may Raft
    snapshots be taken)."""
    autopilot: RaftAutopilot | None
    """Autopilot's settings when :attr:`raft`, else ``None``; its minimum quorum is given by the stack
    (the voters are not known here)."""
    jobs_namespace: str
    """Namespace of the application cluster where the snapshot job and its service account live."""
    ca_secret_name: str | None
    """Secret (``ca.crt``) each application namespace (and :attr:`jobs_namespace`) holds for clients to
    trust Vault's certificate; ``None``: they trust the system's roots (a publicly signed certificate)."""


@dataclass(frozen=True)
class SecretValue:
    """Where one static KV value comes from: a stack secret, or generated by pulumi-random."""

    config_key: str | None
    """Stack config key (in the project namespace) holding the value as a secret."""
    random_length: int | None
    """Length of a generated value when ``config_key`` is ``None``."""


@dataclass(frozen=True)
class KvSecret:
    """One static secret at ``<path_prefix>/<name>`` in the KV v2 mount."""

    name: str
    """Usually the application's name; the last segment of the path."""
    path: str
    """Path inside the mount, ``<path_prefix>/<name>``."""
    values: tuple[tuple[str, SecretValue], ...]
    """Key -> value source, sorted by key."""
    cas_version: int
    """Where the mount requires check-and-set, the version a write expects to replace: 0 creates
    the secret; to change it later, set this to its current version in the same change."""
    owner: str | None = None
    """The application whose file declares it, or ``None`` for the platform's own (the stack file's)."""


@dataclass(frozen=True)
class Kv:
    """The KV v2 mount and its static secrets."""

    mount: str
    """Mount path, ``secret`` by default."""
    max_versions: int
    """Versions kept per key."""
    cas_required: bool
    """Writes must carry check-and-set; required in ``prod``."""
    delete_version_after: int
    """Seconds after which a version is soft-deleted; 0 keeps versions forever."""
    path_prefix: str
    """First path segment of every static secret: the environment's name, e.g. ``production``."""
    secrets: tuple[KvSecret, ...]
    """Static secrets, sorted by name."""


@dataclass(frozen=True)
class Grant:
    """Privileges on all tables of one schema, turned into GRANT statements."""

    privileges: tuple[str, ...]
    """Table privileges, e.g. ``("SELECT", "INSERT", "UPDATE")``."""
    schema: str
    """Schema whose tables (existing, and created later by the owner) the grant covers."""


AdminSetup = Literal["functions", "createrole"]


@dataclass(frozen=True)
class Connection:
    """One PostgreSQL connection of the database secrets engine."""

    name: str
    """Connection name in Vault (``database/config/<name>``)."""
    host: str
    """Host name Vault connects to."""
    port: int
    """TCP port."""
    database: str
    """Database name."""
    admin_user: str
    """The role Vault connects as: never a superuser; what it holds depends on ``admin_setup``."""
    admin_password_key: str | None
    """Stack secret holding the admin password; ``None`` for the dev in-cluster instance, whose
    password pulumi-random generates."""
    in_cluster: bool
    """Deploy a small PostgreSQL next to Vault (``dev`` only) instead of using an existing server."""
    ssl_mode: str
    """libpq ``sslmode`` of Vault's connections: ``verify-full`` unless the stack says otherwise
    (``disable`` for the dev in-cluster instance); outside dev only ``verify-full``, or ``verify-ca``
    with ``tls_ca``."""
    admin_password_version: int = 1
    """The admin password is sent to Vault only when this changes (write-only ``password_wo``): raise
    it together with the stack secret to hand Vault a new password; otherwise Vault keeps its own."""
    rotate_root: bool = False
    """Vault rotates the admin password once the connection is set up (``rotate-root``), so that
    only Vault knows it; off for the dev in-cluster instance, which resets it on restart."""
    admin_setup: AdminSetup = "functions"
    """``functions``: the admin has no CREATEROLE, only EXECUTE on the ``SECURITY DEFINER`` functions
    that create, renew and drop users and set static passwords; ``createrole``: the admin has
    CREATEROLE and grant options itself (superuser-equivalent on PostgreSQL 15; see README)."""
    table_owner: str = "app_owner"
    """The role the migrations create tables as: new tables reach the granting role through its
    default privileges."""
    tls_ca: str | None = None
    """PEM CA certificate(s) Vault verifies the server's certificate with (the connection's
    ``tls_ca``); ``None``: the system's trusted roots."""


@dataclass(frozen=True)
class DatabaseRole:
    """A dynamic role: every credentials request creates a new PostgreSQL user."""

    name: str
    """Role name (``database/creds/<name>``)."""
    connection: str
    """Name of the connection it runs on."""
    default_ttl: int
    """Lease TTL in seconds (1h unless the spec says otherwise)."""
    max_ttl: int
    """Longest a lease may be renewed to, in seconds (24h unless the spec says otherwise)."""
    grants: tuple[Grant, ...]
    """Grants from which the creation statements are generated; empty when verbatim."""
    creation_statements: tuple[str, ...]
    """Verbatim creation statements; empty when generated from ``grants``."""
    owner: str | None = None
    """The application whose file declares it, or ``None`` for the platform's own (the stack file's)."""


@dataclass(frozen=True)
class StaticRole:
    """A static role: Vault owns an existing user's password and rotates it."""

    name: str
    """Role name (``database/static-creds/<name>``)."""
    connection: str
    """Name of the connection it runs on."""
    username: str
    """Existing PostgreSQL user whose password Vault rotates."""
    rotation_period: int
    """Seconds between rotations."""


@dataclass(frozen=True)
class Database:
    """The PostgreSQL database secrets engine."""

    mount: str
    """Mount path, ``database`` by default."""
    connections: tuple[Connection, ...]
    """Connections, sorted by name."""
    roles: tuple[DatabaseRole, ...]
    """Dynamic roles, sorted by name."""
    static_roles: tuple[StaticRole, ...]
    """Static roles, sorted by name."""

    @cached_property
    def role(self) -> dict[str, DatabaseRole]:
        """Dynamic roles by name."""
        return {role.name: role for role in self.roles}

    @cached_property
    def static_role(self) -> dict[str, StaticRole]:
        """Static roles by name."""
        return {role.name: role for role in self.static_roles}

    @cached_property
    def connection(self) -> dict[str, Connection]:
        """Connections by name."""
        return {connection.name: connection for connection in self.connections}


@dataclass(frozen=True)
class PolicyRule:
    """One ``path`` block of a hand-declared ACL policy."""

    path: str
    """Vault API path, e.g. ``secret/data/production/api-service``."""
    capabilities: tuple[str, ...]
    """Capabilities in Vault's order."""


@dataclass(frozen=True)
class Policy:
    """An ACL policy declared in the stack config."""

    name: str
    """Policy name in Vault."""
    rules: tuple[PolicyRule, ...]
    """Path blocks, in the order declared."""


AuditDeviceType = Literal["file", "socket"]
"""Kinds of audit device the platform declares: a file (a path, or ``stdout``) or a socket."""


@dataclass(frozen=True)
class AuditDevice:
    """One audit device (``sys/audit/<path>``). Every device HMACs secrets (``log_raw`` is false)."""

    path: str
    """Where the device is enabled, e.g. ``file`` or ``stdout``."""
    type: AuditDeviceType
    """``file`` or ``socket``."""
    file_path: str | None
    """For a file device: an absolute path on the audit volume (``/vault/audit/...``) or ``stdout``."""
    address: str | None
    """For a socket device: ``host:port`` of the log collector."""
    socket_type: str | None
    """For a socket device: ``tcp`` or ``udp``."""
    description: str
    """Shown by ``vault audit list``."""


@dataclass(frozen=True)
class ClearAuditKeys:
    """Request and response fields of one mount that audit devices log in clear (not HMAC'd)."""

    mount: str
    """A mount this program declares, e.g. ``transit``."""
    request_keys: tuple[str, ...]
    """Mount tuning ``audit_non_hmac_request_keys``, sorted."""
    response_keys: tuple[str, ...]
    """Mount tuning ``audit_non_hmac_response_keys``, sorted."""


@dataclass(frozen=True)
class Audit:
    """Audit logging: every request and response, secrets HMAC'd; what is logged in clear is named."""

    devices: tuple[AuditDevice, ...]
    """Devices, in the order declared; at least two outside ``dev`` (Vault stops serving requests
    when it cannot write to any audit device)."""
    hmac_accessor: bool = True
    """HMAC token accessors; ``False`` logs them in clear (to trace a token without its value)."""
    clear_keys: tuple[ClearAuditKeys, ...] = ()
    """Per-mount fields logged in clear, sorted by mount."""
    rotation: AuditRotation | None = None
    """Rotation of the file device's log on the audit volume; ``None`` when no device writes there."""

    @cached_property
    def clear_keys_of(self) -> dict[str, ClearAuditKeys]:
        """Fields logged in clear, by mount path."""
        return {entry.mount: entry for entry in self.clear_keys}


NO_AUDIT = Audit(devices=())
"""Placeholder default of :attr:`EnvironmentSpec.audit`; :func:`load_spec` always sets the real one."""

TransitOperation = Literal["encrypt", "decrypt", "rewrap", "sign", "verify"]
"""What an application may do with a transit key (``transit/<operation>/<key>``)."""


@dataclass(frozen=True)
class TransitKey:
    """A named key of the transit engine (``transit/keys/<name>``)."""

    name: str
    """Key name."""
    type: str
    """Key type, e.g. ``aes256-gcm96`` or ``ed25519``."""
    auto_rotate_period: int
    """Seconds between automatic rotations; 0 turns automatic rotation off."""
    min_decryption_version: int
    """Oldest key version that may still decrypt (or verify)."""
    exportable: bool
    """The key material may be exported; never in ``prod``."""
    deletion_allowed: bool
    """The key may be deleted; never in ``prod``."""
    operations: tuple[TransitOperation, ...]
    """Operations the key type supports."""


@dataclass(frozen=True)
class Transit:
    """The transit secrets engine: encryption and signing as a service."""

    mount: str
    """Mount path, ``transit`` by default."""
    keys: tuple[TransitKey, ...]
    """Keys, sorted by name."""

    @cached_property
    def key(self) -> dict[str, TransitKey]:
        """Keys by name."""
        return {key.name: key for key in self.keys}


@dataclass(frozen=True)
class TransitGrant:
    """An application's use of one transit key."""

    key: str
    """Key name."""
    operations: tuple[TransitOperation, ...]
    """Operations granted, in the order encrypt, decrypt, rewrap, sign, verify."""


@dataclass(frozen=True)
class CertificateAuthority:
    """One PKI mount holding a CA."""

    mount: str
    """Mount path, e.g. ``pki`` (root) or ``pki_int`` (intermediate)."""
    common_name: str
    """The CA certificate's common name."""
    ttl: int
    """Validity of the CA certificate in seconds; also the mount's max lease TTL."""
    key_type: str
    """``rsa`` or ``ec``."""
    key_bits: int
    """e.g. 4096 for RSA, 384 for EC."""


@dataclass(frozen=True)
class PkiRole:
    """A role of the intermediate mount issuing leaf certificates (``pki_int/issue/<name>``)."""

    name: str
    """Role name."""
    allowed_domains: tuple[str, ...]
    """Domains certificates may be issued for."""
    allow_subdomains: bool
    """Names below an allowed domain are allowed (``a.b.<domain>``)."""
    allow_bare_domains: bool
    """The allowed domains themselves are allowed."""
    server_flag: bool
    """Certificates are valid for TLS servers."""
    client_flag: bool
    """Certificates are valid for TLS clients."""
    ttl: int
    """Default certificate lifetime in seconds."""
    max_ttl: int
    """Longest certificate lifetime in seconds."""
    key_type: str
    """``rsa`` or ``ec``."""
    key_bits: int
    """Key size of issued certificates."""


@dataclass(frozen=True)
class Pki:
    """A two-level CA: a root (in Vault, or external) and an intermediate issuing leaf certificates."""

    root: CertificateAuthority | None
    """The root CA mount; ``None`` when an external root signs the intermediate."""
    intermediate: CertificateAuthority
    """The issuing CA mount."""
    external_signed_certificate: str | None
    """With an external root: the signed intermediate certificate (PEM, with its chain), or ``None``
    until the CSR has been signed (the program then declares the CSR only)."""
    url_base: str
    """Address clients reach Vault at, for the issuing, CRL and OCSP URLs (``<base>/v1/<mount>/...``)."""
    crl_expiry: int
    """Seconds a CRL is valid for; Vault rebuilds it before it expires."""
    roles: tuple[PkiRole, ...]
    """Roles, sorted by name."""

    @cached_property
    def role(self) -> dict[str, PkiRole]:
        """Roles by name."""
        return {role.name: role for role in self.roles}


@dataclass(frozen=True)
class AppCertificate:
    """A certificate the injected agent issues for an application and keeps renewed."""

    role: str
    """PKI role it is issued from."""
    common_name: str
    """Common name; allowed by the role."""
    alt_names: tuple[str, ...]
    """DNS subject alternative names; allowed by the role."""
    ttl: int
    """Requested lifetime in seconds; at most the role's max TTL."""


@dataclass(frozen=True)
class App:
    """An application team's workload and exactly the access it gets."""

    name: str
    """Application name; also its Kubernetes auth role name."""
    namespace: str
    """Kubernetes namespace of its pods."""
    service_account: str
    """Service account its pods run as."""
    token_ttl: int
    """Vault token TTL in seconds."""
    token_max_ttl: int
    """Vault token max TTL in seconds."""
    kv_paths: tuple[str, ...]
    """KV paths (inside the mount) it reads."""
    database_role: str | None
    """Dynamic database role it takes credentials from."""
    policies: tuple[str, ...]
    """Declared policies attached besides its generated one."""
    audience: str
    """Audience its service account token must carry."""
    transit: tuple[TransitGrant, ...] = ()
    """Transit keys it uses and how, sorted by key."""
    certificate: AppCertificate | None = None
    """Certificate the agent issues for it from a PKI role, if any."""
    static_database_role: str | None = None
    """Static database role whose rotated credentials it reads."""
    job: bool = False
    """Its pods run to completion (a Kubernetes Job): the agent only pre-populates the secrets in an
    init container, and no sidecar is left running."""
    team: str = ""
    """The team that owns it: its file's folder (``apps/<team>/<app>.yaml``)."""


CiRoleName = Literal["deploy", "preview"]
"""The two roles a GitHub Actions job logs in with: ``deploy`` (``pulumi up`` on main) and ``preview``
(``pulumi preview`` of a pull request)."""


@dataclass(frozen=True)
class CiRole:
    """A JWT role of the GitHub Actions auth method: which jobs may log in, and what they get."""

    name: CiRoleName
    """Role name in Vault (``auth/<path>/role/<name>``)."""
    environment: str
    """The GitHub Environment the job runs in (the token's ``environment`` claim), matched exactly."""
    ref: str | None
    """The git ref the run is for (the ``ref`` claim, ``refs/heads/main``), or ``None`` to accept any
    (a pull request's preview)."""
    policies: tuple[str, ...]
    """Policies of the tokens it issues."""
    token_ttl: int
    """Seconds the token lives: also its hard maximum, so it cannot be renewed past the job."""


@dataclass(frozen=True)
class GithubActions:
    """CI logs in with the job's GitHub OIDC token (JWT auth); no Vault token is stored anywhere."""

    path: str
    """Mount path of the JWT auth method (``auth/<path>``)."""
    repository: str
    """``owner/name`` of this repository (the token's ``repository`` claim), matched exactly."""
    repository_id: str
    """GitHub's numeric id of the repository (``repository_id``): a repository renamed, or deleted and
    created again under the same name, gets a new one, so the name alone does not let it log in."""
    repository_owner_id: str
    """GitHub's numeric id of the repository's owner (``repository_owner_id``), likewise."""
    audience: str
    """The audience workflows request their token for and the roles require (``aud``)."""
    issuer: str
    """The OIDC issuer of the job tokens (``iss``): GitHub's, or a GitHub Enterprise Server's; Vault reads its
    discovery document and signing keys there, and accepts no other issuer."""
    issuer_ca_pem: str | None
    """The CA (PEM) that signed the issuer's HTTPS certificate when it is a private one, else ``None``."""
    deploy: CiRole
    """``pulumi up`` from ``main`` in the stack's deploy environment, with ``vault-iac``."""
    preview: CiRole
    """``pulumi preview`` of a pull request in the stack's preview environment, read-only."""

    @property
    def roles(self) -> tuple[CiRole, CiRole]:
        """Both roles, deploy first."""
        return (self.deploy, self.preview)


@dataclass(frozen=True)
class PeopleGroup:
    """An identity provider group (a value of the groups claim) and the policies its members get."""

    name: str
    """The group's name as the identity provider sends it; also the Vault identity group's name."""
    policies: tuple[str, ...]
    """Policies attached to the Vault identity group."""


@dataclass(frozen=True)
class PeopleOidc:
    """People log in with the company's identity provider (OIDC auth): ``vault login -method=oidc``."""

    path: str
    """Mount path of the OIDC auth method (``auth/<path>``)."""
    discovery_url: str
    """The identity provider's issuer, where Vault reads ``.well-known/openid-configuration``."""
    discovery_ca_pem: str | None
    """The CA (PEM) that signed the identity provider's HTTPS certificate when it is a private one."""
    client_id: str
    """Vault's OAuth client id at the identity provider."""
    client_secret_key: str
    """Stack secret holding the client secret."""
    allowed_redirect_uris: tuple[str, ...]
    """Where the identity provider may send the browser back to (the UI and the CLI's listener)."""
    user_claim: str
    """Claim naming the person (entity alias), e.g. ``email``."""
    groups_claim: str
    """Claim listing the person's groups."""
    scopes: tuple[str, ...]
    """OIDC scopes requested besides ``openid`` (some providers send groups only for a scope)."""
    groups: tuple[PeopleGroup, ...]
    """Group -> policies, sorted by name; the only way a person gets a policy."""
    token_ttl: int
    """Seconds a person's token lives before it must be renewed."""
    token_max_ttl: int
    """Seconds after which a person logs in again."""


@dataclass(frozen=True)
class JwtLogin:
    """The IaC logs in as the CI job, never with anything from the stack: with the Vault token
    ``platformctl vault-login`` exchanged the job's OIDC token for, from the file the job names
    (the provider's ``auth_login_token_file``), else with the OIDC token itself (``auth_login_jwt``,
    from ``TERRAFORM_VAULT_AUTH_JWT``)."""

    mount: str
    """Mount path of the JWT auth method."""
    role: CiRoleName
    """The role this run logs in with."""
    token_file: str | None = None
    """The job's Vault token file (``TERRAFORM_VAULT_TOKEN_FILENAME``), or ``None`` to log in with the
    OIDC token at the provider's first call."""


@dataclass(frozen=True)
class Snapshots:
    """Raft snapshots on a schedule, uploaded to the stack's own S3 bucket (``vault-platform:snapshots``)."""

    interval: int
    """Seconds between two snapshots: a whole number of hours dividing a day (1h, 2h, 3h, 4h, 6h, 8h,
    12h, 24h), so that the CronJob's schedule is exact and an alert knows when one is missing."""
    retention_days: int
    """Days a snapshot is kept in the bucket (its lifecycle rule); at least two intervals."""
    bucket: str
    """S3 bucket of the stack's snapshots, created by ``platformctl bootstrap-state``."""
    region: str
    """AWS region of the bucket."""
    role_arn: str
    """IAM role the snapshot job's service account assumes (IRSA); it may only upload to the bucket."""


@dataclass(frozen=True)
class Monitoring:
    """The Prometheus operator's ServiceMonitor (the chart's) and the alert rules (``vault-platform:monitoring``)."""

    prometheus_labels: tuple[tuple[str, str], ...]
    """Labels the Prometheus operator selects ServiceMonitors and PrometheusRules by, sorted."""
    prometheus_namespace: str
    """The namespace Prometheus runs in: the only one whose pods may reach Vault's metrics port."""
    prometheus_pod_labels: tuple[tuple[str, str], ...]
    """Labels of the Prometheus pods there (the operator's), sorted: the only pods that may reach it."""
    lease_threshold: int
    """Leases Vault may hold before an alert fires."""
    request_latency_ms: int
    """99th percentile of request handling time, in milliseconds, above which an alert fires."""


@dataclass(frozen=True)
class AuditRotation:
    """Rotation of the file audit device's log on the audit volume (``vault-platform:audit.rotation``)."""

    max_file_bytes: int
    """The log is rotated when it grows past this size, and at least once a day."""
    retention_days: int
    """Days rotated (gzipped) logs are kept on the volume."""


@dataclass(frozen=True)
class VaultAccess:
    """How the configuration layer reaches an initialized Vault: ``vault:address`` and a login, either
    the token in ``vault:token`` (the bootstrap run, break-glass) or the CI job's OIDC token."""

    address: str
    """Vault API address, e.g. ``https://vault.example.internal:8200``."""
    token_key: str | None
    """Stack secret holding the token the IaC runs with (``vault:token``), or ``None`` with a JWT login."""
    ca_cert_file: str | None
    """CA certificate(s) that verify Vault's (``vault:caCertFile``, a file of the repository, relative to
    the project's root: ``stacks/ca/<stack>.pem``); ``None`` uses the machine's trust store (an http
    address, dev, or a stack that states ``vaultCaPublic``)."""
    jwt_login: JwtLogin | None = None
    """The JWT login when no ``vault:token`` is set; exactly one of the two is set."""


@dataclass(frozen=True)
class EnvironmentSpec:
    """A whole stack: ``stack config -> EnvironmentSpec -> components -> resources``."""

    stack: str
    """Pulumi stack name."""
    tier: Tier
    """Rules that apply (``dev``, ``staging``, ``prod``)."""
    cluster: Cluster | None
    """The Vault servers and injector this stack deploys; ``None`` when its Vault is :attr:`external`."""
    kubernetes_auth_path: str
    """Mount path of the Kubernetes auth method."""
    kv: Kv
    """KV v2 mount and static secrets."""
    database: Database | None
    """Database secrets engine, or ``None`` when the stack has none."""
    vault: VaultAccess | None
    """Access to an initialized Vault; ``None`` only in a stack that states ``clusterOnly`` (a new
    environment's first ``pulumi up``), which declares the cluster layer alone."""
    policies: tuple[Policy, ...] = field(default=())
    """Declared ACL policies, sorted by name."""
    apps: tuple[App, ...] = field(default=())
    """Applications, sorted by name."""
    audit: Audit = field(default=NO_AUDIT)
    """Audit devices and what they log in clear."""
    transit: Transit | None = None
    """Transit engine, or ``None`` when the stack has none."""
    pki: Pki | None = None
    """PKI engine, or ``None`` when the stack has none."""
    kubernetes_auth_audience: str = ""
    """Audience the cluster's service account tokens carry (``kubernetesAuth.audience``)."""
    snapshots: Snapshots | None = None
    """Scheduled Raft snapshots, or ``None`` (dev only) when the stack takes none."""
    monitoring: Monitoring | None = None
    """ServiceMonitor and alert rules, or ``None`` (dev only) when the stack has no Prometheus operator."""
    github_actions: GithubActions | None = None
    """GitHub Actions' JWT login, or ``None`` while CI still runs with a token."""
    people: PeopleOidc | None = None
    """People's OIDC login, or ``None`` when the stack has none."""
    removals: tuple[str, ...] = ()
    """Stateful configuration the stack states it removes (``vault-platform:removals``), by Vault path:
    these alone are declared unprotected, so that a later ``pulumi up`` may delete them."""
    external: ExternalVault | None = None
    """The Vault this stack configures but does not deploy, or ``None`` when it deploys :attr:`cluster`;
    exactly one of the two is set."""
    team_stacks: bool = False
    """Each team's applications are declared by a stack of their own, ``<stack>.<team>``
    (``vault-platform:teamStacks``), and this stack declares the platform alone: every stack's state then
    grows with one team's applications, not with all of them."""
    team: str | None = None
    """In a team's stack (``prod.payments``), the team whose applications it declares; ``None`` in the
    environment's own stack. :attr:`stack` names the environment in both."""

    def declares(self, owner: str | None) -> bool:
        """Whether this stack declares the Vault objects of application ``owner`` (its role, its policy,
        the secrets and database roles its file declares), or, for ``None``, the platform's own."""
        if not self.team_stacks:
            return True
        if owner is None:
            return self.team is None
        return self._teams.get(owner) == self.team

    @property
    def declared_apps(self) -> tuple[App, ...]:
        """The applications whose Vault objects this stack declares, sorted by name."""
        return tuple(app for app in self.apps if self.declares(app.name))

    @cached_property
    def _teams(self) -> dict[str, str]:
        return {app.name: app.team for app in self.apps}

    @property
    def deployed(self) -> Cluster:
        """:attr:`cluster`, for what only a stack that deploys its Vault declares (the Helm release, the
        alert rules on its servers); a stack whose Vault is external never asks for it."""
        if self.cluster is None:
            raise ValueError(f"stack {self.stack!r} deploys no Vault: its Vault is external")
        return self.cluster

    @property
    def autopilot(self) -> RaftAutopilot | None:
        """Raft autopilot's settings, or ``None`` when Vault does not run on Raft storage."""
        if self.cluster is not None:
            return self.cluster.autopilot
        return self.external.autopilot if self.external is not None else None

    @property
    def jobs_namespace(self) -> str:
        """Where the platform's own jobs (the Raft snapshot job) run: Vault's namespace when this stack
        deploys it, else the external Vault's ``jobsNamespace`` in the application cluster."""
        if self.cluster is not None:
            return self.cluster.namespace
        assert self.external is not None
        return self.external.jobs_namespace

    @property
    def ca_secret_name(self) -> str | None:
        """The secret (``ca.crt``) clients in the application cluster trust Vault's certificate through,
        or ``None`` when there is none to distribute (no TLS, or a certificate the system's roots verify)."""
        if self.cluster is not None:
            return self.cluster.tls.ca_secret_name if self.cluster.tls.enabled else None
        return self.external.ca_secret_name if self.external is not None else None

    @property
    def protect(self) -> bool:
        """The cluster layer's stateful resources (the namespace, the release) are protected from
        deletion in ``prod``."""
        return self.tier == "prod"

    def keeps(self, path: str) -> bool:
        """Whether the configuration layer's stateful resource at Vault ``path`` (``sys/mounts/secret``,
        ``sys/auth/kubernetes``, ``sys/audit/file``, ``transit/keys/payments``) is protected from
        deletion: in every tier, unless the stack states its removal. Deleting one loses what only
        Vault holds (every secret of a mount, every ciphertext of a key, a CA's private key), and a
        lost login or a renamed path would otherwise delete it without anyone asking."""
        return not rules.removal_stated(path, self.removals)
