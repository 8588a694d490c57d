"""The audit, transit and PKI sections of the stack config, and what an application asks of them.

Called by :func:`environment.loader.load_spec`; every refusal is a :class:`SpecError` that
names the exact key. Lookups go through dicts, so checking every application stays linear.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Set
from dataclasses import dataclass
from typing import cast

from vaultmodel import rules
from vaultmodel.durations import DAY, HOUR, YEAR, format_duration

from . import operations
from ._reader import (
    HOST,
    K8S_SUBDOMAIN,
    PORTS,
    REMOVE,
    VAULT_NAME,
    Node,
    SpecError,
    check_name,
    check_ttl_order,
    collecting,
    declared,
    name_of,
    port_problem,
    refuse_duplicate,
    report,
)
from .model import (
    AppCertificate,
    Audit,
    AuditDevice,
    AuditDeviceType,
    CertificateAuthority,
    ClearAuditKeys,
    Database,
    Pki,
    PkiRole,
    Tier,
    Transit,
    TransitGrant,
    TransitKey,
    TransitOperation,
)

# The chart mounts each server's audit volume here (server.auditStorage); a file device anywhere
# else writes to the container's filesystem, or to the Raft data volume. Same value as
# render.helm_values.AUDIT_MOUNT_PATH (a test keeps them equal).
AUDIT_DIRECTORY = "/vault/audit"
STDOUT = "stdout"
EXTERNAL_FILE_FIX = (f"write the absolute path of a file the Vault's servers may write (where its operator keeps "
                     f"audit logs), e.g. /var/log/vault/vault-audit.log, or {STDOUT!r}")
SOCKET_TYPES = ("tcp", "udp")
_AUDIT_KEY = re.compile(r"[a-z][a-z0-9_]*")
_SOCKET_ADDRESS = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?:(\d{1,5})")

TRANSIT_OPERATIONS: tuple[TransitOperation, ...] = ("encrypt", "decrypt", "rewrap", "sign", "verify")
_ENCRYPT: tuple[TransitOperation, ...] = ("encrypt", "decrypt", "rewrap")
_SIGN: tuple[TransitOperation, ...] = ("sign", "verify")
# Key types and what each can do (Vault's transit key types, without HMAC-, CMAC-, managed and
# post-quantum keys, which have endpoints of their own).
TRANSIT_KEY_TYPES: dict[str, tuple[TransitOperation, ...]] = {
    "aes128-gcm96": _ENCRYPT,
    "aes256-gcm96": _ENCRYPT,
    "chacha20-poly1305": _ENCRYPT,
    "ed25519": _SIGN,
    "ecdsa-p256": _SIGN,
    "ecdsa-p384": _SIGN,
    "ecdsa-p521": _SIGN,
    "rsa-2048": (*_ENCRYPT, *_SIGN),
    "rsa-3072": (*_ENCRYPT, *_SIGN),
    "rsa-4096": (*_ENCRYPT, *_SIGN),
}
MIN_AUTO_ROTATE = HOUR  # Vault refuses a shorter auto_rotate_period (other than 0)

PKI_KEY_BITS: dict[str, tuple[int, ...]] = {"rsa": (2048, 3072, 4096), "ec": (256, 384, 521)}
_URL_BASE = re.compile(r"(https?)://[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?(?::(\d{1,5}))?")


# -- audit ------------------------------------------------------------------------------------------

def load_audit(node: Node, tier: Tier, mounts: Set[str], *, external: bool = False) -> Audit:
    """The ``audit`` section; ``mounts`` are the mount paths the spec declares. With an ``external``
    Vault, a file device writes where that Vault's servers can (an absolute path), there is no audit
    volume to require, and no rotation: the log is its operator's."""
    devices: dict[str, AuditDevice] = {}
    files: dict[str, str] = {}
    for item in node.children("devices"):
        with collecting():
            device = _audit_device(item, external)
            if device.path in devices:
                raise item.error("path", f"a second audit device is enabled at {device.path!r}",
                                 "give each device its own path")
            if device.file_path is not None and device.file_path in files:
                raise item.error("filePath", f"{device.file_path!r} is already written by device "
                                 f"{files[device.file_path]!r}", "give each file device its own file")
            if device.file_path is not None:
                files[device.file_path] = device.path
            devices[device.path] = device
    # A device refused for a problem of its own is not reported again as missing.
    complete = len(devices) == len(node.strings_or_items("devices"))
    if complete and (problem := rules.audit_devices(len(devices), tier)) is not None:
        where = "an absolute path the Vault's servers can write" if external else f"{AUDIT_DIRECTORY}/"
        raise node.error("devices", problem, f"declare a file device on {where} and a second one to stdout or a socket")
    if external and node.has("rotation"):
        raise node.error("rotation", "is set, but the stack's Vault is external: the log rotation runs beside the "
                         "servers this program deploys", "remove it: the Vault's operator rotates its audit logs",
                         edit=REMOVE)
    on_volume = not external and any(path.startswith(f"{AUDIT_DIRECTORY}/") for path in files)
    if complete and tier != "dev" and not external and not on_volume:
        raise node.error("devices", f"no device writes to the audit volume ({AUDIT_DIRECTORY}) in {tier}",
                         f"declare a file device with filePath {AUDIT_DIRECTORY}/vault-audit.log")
    clear: dict[str, ClearAuditKeys] = {}
    for item in node.children("clearKeys"):
        with collecting():
            mount = item.string("mount", rule=VAULT_NAME)
            if mount not in mounts:
                raise item.error("mount", f"mount {mount!r} is not declared by this stack",
                                 f"use one of {', '.join(sorted(mounts))}", refers_to=f"mounts:{mount}")
            if mount in clear:
                raise item.error("mount", f"a second clearKeys entry names mount {mount!r}",
                                 "list all of the mount's keys in one entry")
            entry = ClearAuditKeys(mount=mount, request_keys=_clear_keys(item, "request"),
                                   response_keys=_clear_keys(item, "response"))
            if not item.strings_or_items("request") and not item.strings_or_items("response"):
                raise item.error(None, "lists no keys", "list request or response keys, or remove the entry")
            item.done()
            clear[mount] = entry
    if complete and node.has("rotation") and not on_volume:
        raise node.error("rotation", f"no device writes to the audit volume ({AUDIT_DIRECTORY})",
                         "remove rotation, or declare a file device there")
    audit = Audit(
        devices=tuple(devices.values()),
        hmac_accessor=node.boolean("hmacAccessor", True),
        clear_keys=tuple(sorted(clear.values(), key=lambda entry: entry.mount)),
        rotation=operations.load_audit_rotation(node.child("rotation"), tier) if on_volume else None,
    )
    node.done()
    return audit


def _audit_device(node: Node, external: bool) -> AuditDevice:
    kind = node.string("type", "file", choices=("file", "socket"))
    if node.boolean("logRaw", False):
        raise node.error("logRaw", "would write every secret, token and password to the audit log in "
                         "clear", "remove logRaw; to log a field in clear, name it under audit.clearKeys")
    path = node.string("path", rule=VAULT_NAME)
    file_path = address = socket_type = None
    if kind == "file":
        if external:
            node.require("filePath", EXTERNAL_FILE_FIX)
        file_path = node.string("filePath")
        # A plain file (right under the volume): no "..", ".", "//" or trailing "/" that would name a
        # directory or let two devices write one file under two spellings.
        plain = posixpath.normpath(file_path) == file_path and bool(
            re.fullmatch(r"[-_.a-zA-Z0-9]+", posixpath.basename(file_path)))
        if file_path != STDOUT and external and not (plain and posixpath.isabs(file_path)):
            raise node.error("filePath", f"{file_path!r} is not an absolute path of a file: the external Vault "
                             "opens it on its own servers", EXTERNAL_FILE_FIX)
        if file_path != STDOUT and not external and not (plain and posixpath.dirname(file_path) == AUDIT_DIRECTORY):
            raise node.error("filePath", f"{file_path!r} is not on the audit volume",
                             f"write to a file under {AUDIT_DIRECTORY}/ or to {STDOUT!r}")
    else:
        address = node.string("address")
        match = _SOCKET_ADDRESS.fullmatch(address)
        if match is None:
            raise node.error("address", f"{address!r} is not host:port", "write it like fluent-bit.logging:5170")
        if (problem := port_problem(int(match.group(2)))) is not None:
            raise node.error("address", f"{address!r}: {problem}", f"use a port from {PORTS[0]} to {PORTS[1]}")
        socket_type = node.string("socketType", "tcp", choices=SOCKET_TYPES)
    for name in ("filePath", "address", "socketType"):
        if node.has(name) and (kind == "file") == (name != "filePath"):
            raise node.error(name, f"does not apply to a {kind} device", "remove it")
    target = file_path if file_path is not None else f"{socket_type}://{address}"
    device = AuditDevice(path=path, type=cast(AuditDeviceType, kind), file_path=file_path,
                         address=address, socket_type=socket_type,
                         description=node.string("description", f"Audit log to {target}."))
    node.done()
    return device


def _clear_keys(node: Node, name: str) -> tuple[str, ...]:
    keys = node.strings(name)
    for index, key in enumerate(keys):
        if not _AUDIT_KEY.fullmatch(key):
            raise node.error(f"{name}[{index}]", f"{key!r} is not a request or response field name",
                             "use the field's name, e.g. key_version")
    remaining = [key for key in keys if rules.secret_audit_field(key) is None]
    for index, key in enumerate(keys):
        if (problem := rules.secret_audit_field(key)) is not None:
            # Each such field is reported; the fix (for all of them) is the list without them.
            report(SpecError(node.stack, node.path(f"{name}[{index}]"), problem,
                             "remove it: the audit log shows its HMAC, which still tells equal values apart",
                             edits=((node.path(name), remaining),)))
    return tuple(sorted(set(remaining)))


# -- transit ----------------------------------------------------------------------------------------

def load_transit(node: Node, tier: Tier) -> Transit:
    keys: dict[str, TransitKey] = {}
    for item in node.children("keys"):
        with collecting(broken=f"transit.keys:{name_of(item)}"):
            key = _transit_key(item, tier)
            refuse_duplicate(item, "name", key.name, keys, "transit key")
            keys[key.name] = key
    transit = Transit(mount=node.string("mount", "transit", rule=VAULT_NAME),
                      keys=tuple(sorted(keys.values(), key=lambda k: k.name)))
    node.done()
    return transit


def _transit_key(node: Node, tier: Tier) -> TransitKey:
    key_type = node.string("type", "aes256-gcm96")
    if key_type not in TRANSIT_KEY_TYPES:
        raise node.error("type", f"{key_type!r} is not a transit key type",
                         f"use one of {', '.join(TRANSIT_KEY_TYPES)}")
    period = node.duration("autoRotatePeriod", 0)
    if 0 < period < MIN_AUTO_ROTATE:
        raise node.error("autoRotatePeriod", f"{node.written('autoRotatePeriod', period)} is shorter than the "
                         f"{format_duration(MIN_AUTO_ROTATE)} Vault allows", "use 1h or more, or 0 to rotate by hand",
                         edit=format_duration(MIN_AUTO_ROTATE))
    key = TransitKey(
        name=node.string("name", rule=VAULT_NAME),
        type=key_type,
        auto_rotate_period=period,
        min_decryption_version=node.integer("minDecryptionVersion", 1, minimum=1),
        exportable=node.boolean("exportable", False),
        deletion_allowed=node.boolean("deletionAllowed", False),
        operations=TRANSIT_KEY_TYPES[key_type],
    )
    if tier == "prod":
        for name, value, why in (("exportable", key.exportable, "the key material could leave Vault, and "
                                  "once set it cannot be turned off"),
                                 ("deletionAllowed", key.deletion_allowed, "deleting a key destroys every "
                                  "ciphertext made with it")):
            if value:
                raise node.error(name, f"is not allowed in prod: {why}", "remove it or set it to false", edit=False)
    node.done()
    return key


# -- PKI --------------------------------------------------------------------------------------------

def load_pki(node: Node, tier: Tier) -> Pki:
    root_node = node.child("root")
    external = root_node.boolean("external", False)
    root = None
    signed = None
    if external:
        signed = root_node.optional_string("signedCertificate")
        if signed is not None and "-----BEGIN CERTIFICATE-----" not in signed:
            raise root_node.error("signedCertificate", "is not a PEM certificate",
                                  "paste the signed intermediate certificate and its chain, PEM encoded")
    else:
        root = _authority(root_node, "pki", 10 * YEAR, "ec", 384)
    root_node.done()
    intermediate_node = node.child("intermediate")
    intermediate = _authority(intermediate_node, "pki_int", 3 * YEAR, "ec", 256)
    if root is not None:
        if intermediate.mount == root.mount:
            raise intermediate_node.error("mount", f"{root.mount!r} is the root CA's mount",
                                          "give the intermediate CA a mount of its own")
        _check_shorter(intermediate_node, "ttl", intermediate.ttl, "pki.root.ttl", root.ttl)
    intermediate_node.done()
    url_base = node.string("urlBase").rstrip("/")
    match = _URL_BASE.fullmatch(url_base)
    if match is None:
        raise node.error("urlBase", f"{url_base!r} is not a base URL",
                         "write the address clients reach Vault at, like https://vault.example.internal:8200")
    if match.group(1) != "https" and tier != "dev":
        raise node.error("urlBase", f"plain http in {tier}", "use the https address of Vault",
                         edit="https" + url_base[len("http"):])
    if match.group(2) and (problem := port_problem(int(match.group(2)))) is not None:
        raise node.error("urlBase", f"{url_base!r}: {problem}", f"use a port from {PORTS[0]} to {PORTS[1]}, "
                         "usually Vault's 8200", edit=f"{url_base[:match.start(2)]}8200")
    roles: dict[str, PkiRole] = {}
    for item in node.children("roles"):
        with collecting(broken=f"pki.roles:{name_of(item)}"):
            role = _pki_role(item, intermediate)
            refuse_duplicate(item, "name", role.name, roles, "PKI role")
            roles[role.name] = role
    pki = Pki(
        root=root,
        intermediate=intermediate,
        external_signed_certificate=signed,
        url_base=url_base,
        crl_expiry=node.duration("crlExpiry", 3 * DAY),
        roles=tuple(sorted(roles.values(), key=lambda r: r.name)),
    )
    if pki.crl_expiry < DAY:
        raise node.error("crlExpiry", f"{node.written('crlExpiry', pki.crl_expiry)} leaves no room to rebuild the "
                         "CRL 12h before it expires", "use 24h or more", edit="24h")
    node.done()
    return pki


def _authority(node: Node, mount: str, ttl: int, key_type: str, key_bits: int) -> CertificateAuthority:
    authority = CertificateAuthority(
        mount=node.string("mount", mount, rule=VAULT_NAME),
        common_name=node.string("commonName"),
        ttl=node.duration("ttl", ttl),
        key_type=node.string("keyType", key_type, choices=tuple(PKI_KEY_BITS)),
        key_bits=node.integer("keyBits", key_bits, minimum=1),
    )
    _check_key_bits(node, authority.key_type, authority.key_bits)
    if not 0 < len(authority.common_name) <= 64 or not authority.common_name.isprintable():
        raise node.error("commonName", f"{authority.common_name!r} is not a certificate common name",
                         "use 1 to 64 printable characters, e.g. 'Example Production Root CA'")
    return authority


def _pki_role(node: Node, intermediate: CertificateAuthority) -> PkiRole:
    domains = node.strings("allowedDomains", rule=HOST)
    if not domains:
        raise node.error("allowedDomains", "is empty", "list the domains certificates may be issued for")
    role = PkiRole(
        name=node.string("name", rule=VAULT_NAME),
        allowed_domains=tuple(dict.fromkeys(domains)),
        allow_subdomains=node.boolean("allowSubdomains", False),
        allow_bare_domains=node.boolean("allowBareDomains", True),
        server_flag=node.boolean("serverFlag", True),
        client_flag=node.boolean("clientFlag", False),
        ttl=node.duration("ttl", DAY),
        max_ttl=node.duration("maxTtl", 3 * DAY),
        key_type=node.string("keyType", "ec", choices=tuple(PKI_KEY_BITS)),
        key_bits=node.integer("keyBits", 256, minimum=1),
    )
    _check_key_bits(node, role.key_type, role.key_bits)
    for index, domain in enumerate(role.allowed_domains):
        if (problem := rules.owned_domain(domain, role.allow_subdomains)) is not None:
            report(node.error(f"allowedDomains[{index}]", problem,
                              "list the organisation's own domains (e.g. payments.example.com), or the names of "
                              "the services themselves"))
    if not role.allow_subdomains and not role.allow_bare_domains:
        raise node.error("allowBareDomains", "with allowSubdomains also false, no name can be issued",
                         "allow bare domains, subdomains, or both")
    if not role.server_flag and not role.client_flag:
        raise node.error("serverFlag", "with clientFlag also false, certificates are good for nothing",
                         "set serverFlag, clientFlag or both")
    if role.ttl == 0:
        raise node.error("ttl", "0 would fall back to the mount's maximum", "set a short TTL such as 24h",
                         edit=node.written("maxTtl", role.max_ttl) if role.max_ttl < DAY else "24h")
    check_ttl_order(node, "ttl", role.ttl, "maxTtl", role.max_ttl)
    _check_shorter(node, "maxTtl", role.max_ttl, "pki.intermediate.ttl", intermediate.ttl)
    node.done()
    return role


def _check_key_bits(node: Node, key_type: str, key_bits: int) -> None:
    if key_bits not in PKI_KEY_BITS[key_type]:
        raise node.error("keyBits", f"{key_bits} is not a {key_type} key size",
                         f"use one of {', '.join(map(str, PKI_KEY_BITS[key_type]))}", edit=PKI_KEY_BITS[key_type][0])


def _check_shorter(node: Node, key: str, value: int, outer_key: str, outer: int) -> None:
    """A certificate must expire before the CA that signs it."""
    if value >= outer:
        shorter = format_duration(outer - DAY if outer > 2 * DAY else outer // 2)
        raise node.error(key, f"{node.written(key, value)} is not shorter than {outer_key} "
                         f"({format_duration(outer)}): a certificate cannot outlive the CA that signs it",
                         f"lower {key} below {format_duration(outer)}, e.g. {shorter}", edit=shorter)


# -- what an application asks of them ---------------------------------------------------------------

@dataclass(frozen=True)
class AppAccess:
    """The transit, PKI and static-credential parts of one application's spec."""

    transit: tuple[TransitGrant, ...]
    certificate: AppCertificate | None
    static_database_role: str | None


def load_app_access(node: Node, transit: Transit | None, pki: Pki | None,
                    database: Database | None) -> AppAccess:
    """Reads ``transitKeys``, ``certificate`` and ``staticDatabaseRole`` of the application ``node``."""
    grants: dict[str, TransitGrant] = {}
    for item in node.children("transitKeys"):
        key_name = item.string("key", rule=VAULT_NAME)
        keys = transit.key if transit is not None else {}
        if key_name not in keys:
            raise item.error("key", f"transit key {key_name!r} is not declared",
                             f"declare it under transit.keys ({declared(keys)})", refers_to=f"transit.keys:{key_name}")
        if key_name in grants:
            raise item.error("key", f"transit key {key_name!r} is listed twice", "list each key once")
        key = keys[key_name]
        operations = item.strings("operations")
        if not operations:
            raise item.error("operations", "is empty", f"list some of {', '.join(key.operations)}")
        for index, operation in enumerate(operations):
            if operation not in TRANSIT_OPERATIONS:
                raise item.error(f"operations[{index}]", f"{operation!r} is not a transit operation",
                                 f"use some of {', '.join(TRANSIT_OPERATIONS)}")
            if operation not in key.operations:
                raise item.error(f"operations[{index}]", f"a {key.type} key cannot {operation}",
                                 f"use some of {', '.join(key.operations)}, or a key type that can {operation}")
        chosen = set(operations)
        grants[key_name] = TransitGrant(key=key_name,
                                        operations=tuple(op for op in TRANSIT_OPERATIONS if op in chosen))
        item.done()
    certificate = _app_certificate(node.child("certificate"), pki) if node.has("certificate") else None
    node.raw("certificate")
    static_role = node.optional_string("staticDatabaseRole", rule=VAULT_NAME)
    if static_role is not None:
        static_roles = database.static_role if database is not None else {}
        if static_role not in static_roles:
            raise node.error("staticDatabaseRole", f"static database role {static_role!r} is not declared",
                             f"declare it under database.staticRoles ({declared(static_roles)})",
                             refers_to=f"database.staticRoles:{static_role}")
    return AppAccess(transit=tuple(sorted(grants.values(), key=lambda g: g.key)), certificate=certificate,
                     static_database_role=static_role)


def _app_certificate(node: Node, pki: Pki | None) -> AppCertificate:
    role_name = node.string("role", rule=VAULT_NAME)
    roles = pki.role if pki is not None else {}
    if role_name not in roles:
        raise node.error("role", f"PKI role {role_name!r} is not declared",
                         f"declare it under pki.roles ({declared(roles)})", refers_to=f"pki.roles:{role_name}")
    role = roles[role_name]
    certificate = AppCertificate(
        role=role_name,
        common_name=node.string("commonName", rule=K8S_SUBDOMAIN),
        alt_names=tuple(dict.fromkeys(node.strings("altNames", rule=K8S_SUBDOMAIN))),
        ttl=node.duration("ttl", role.ttl),
    )
    _check_allowed(node, "commonName", certificate.common_name, role)
    for index, name in enumerate(certificate.alt_names):
        _check_allowed(node, f"altNames[{index}]", name, role)
    if not 0 < certificate.ttl <= role.max_ttl:
        raise node.error("ttl", f"{node.written('ttl', certificate.ttl)} is above role {role.name!r}'s maxTtl "
                         f"({format_duration(role.max_ttl)})" if certificate.ttl else "is 0",
                         f"use at most {format_duration(role.max_ttl)}", edit=format_duration(role.max_ttl))
    node.done()
    return certificate


def _check_allowed(node: Node, key: str, name: str, role: PkiRole) -> None:
    """``name`` is one the role issues: an allowed domain itself, or a name below one."""
    check_name(node, key, name, K8S_SUBDOMAIN)
    if role.allow_bare_domains and name in role.allowed_domains:
        return
    if role.allow_subdomains:
        labels = name.split(".")
        # Each suffix of the name is one dict/set lookup: linear in the name's length.
        domains = set(role.allowed_domains)
        if any(".".join(labels[i:]) in domains for i in range(1, len(labels))):
            return
    rule = ("itself" if role.allow_bare_domains else "") + (
        " or a subdomain" if role.allow_subdomains and role.allow_bare_domains else
        "a subdomain" if role.allow_subdomains else "")
    raise node.error(key, f"{name!r} is not allowed by PKI role {role.name!r} "
                     f"(allowed: {', '.join(role.allowed_domains)}, {rule.strip()})",
                     "use a name the role allows, or widen the role's allowedDomains")


def mounts_of(*groups: Iterable[str]) -> frozenset[str]:
    return frozenset(mount for group in groups for mount in group)


