"""One application as a stack declares it (``platformctl plan <stack> --app <name>``): the identity
its pods log in with, the policies its token gets, what those reach among what the stack declares
(decided with Vault's ACL rules, :mod:`components.vault_acl`), and the annotations its team pastes
into the pod template.

Pure: a :class:`platformctl.engine.Declaration` in, text out; everything is read from the resources
and outputs the program declares, so it shows what ``pulumi up`` would upload."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from components.environment.durations import format_duration
from components.vault_acl import Acl

from .engine import Declaration, DeclaredResource, unwrap

AUTH_ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
POLICY = "vault:index/policy:Policy"
KV_SECRET = "vault:kv/secretV2:SecretV2"
DATABASE_ROLE = "vault:database/secretBackendRole:SecretBackendRole"
STATIC_ROLE = "vault:database/secretBackendStaticRole:SecretBackendStaticRole"
TRANSIT_KEY = "vault:transit/secretBackendKey:SecretBackendKey"
PKI_ROLE = "vault:pkiSecret/secretBackendRole:SecretBackendRole"
TRANSIT_OPERATIONS = ("encrypt", "decrypt", "rewrap", "sign", "verify", "hmac", "datakey/plaintext",
                      "datakey/wrapped")
"""Transit endpoints per key (``transit/<operation>/<key>``, capability ``update``)."""


class UnknownApp(LookupError):
    """The stack declares no application of that name."""


def apps(declaration: Declaration) -> list[str]:
    """The applications a stack declares: the names of its Kubernetes auth roles that have
    annotations as a stack output."""
    roles = [r.inputs["roleName"] for r in declaration.of_type(AUTH_ROLE)]
    return sorted(name for name in roles if f"{name}-annotations" in declaration.outputs)


def app_text(declaration: Declaration, name: str) -> str:
    """The identity, policies, reach and annotations of application ``name``."""
    roles = [r for r in declaration.of_type(AUTH_ROLE) if r.inputs["roleName"] == name]
    if not roles or f"{name}-annotations" not in declaration.outputs:
        raise UnknownApp(f"stack {declaration.stack!r} declares no application {name!r} "
                         f"(applications: {', '.join(apps(declaration)) or 'none'})")
    role = unwrap(roles[0].inputs)
    texts = _policy_texts(declaration, role["tokenPolicies"])
    default = not role.get("tokenNoDefaultPolicy", False)  # Vault adds its `default` policy unless told not to
    lines = [f"Application {name!r} in stack {declaration.stack!r}", "",
             "Identity:",
             f"  Kubernetes service account {_accounts(role)}",
             f"  -> Vault role {name!r} at auth/{role['backend']}, audience {role.get('audience') or '(any)'}",
             f"  -> token TTL {_duration(role['tokenTtl'])}, renewable up to {_duration(role['tokenMaxTtl'])}, "
             f"policies: {', '.join([*role['tokenPolicies'], *(['default'] if default else [])])}",
             "", "Policies:"]
    for policy, text in texts.items():
        lines += [f"  {policy}:", *(f"    {line}" if line else "" for line in text.rstrip("\n").splitlines())]
    lines += ["", "Reach (what the token may do with what the stack declares, by Vault's ACL rules):"]
    reach = list(_reach(declaration, Acl.of_texts(texts, default_policy=default)))
    lines += [f"  {line}" for line in reach] or ["  nothing"]
    annotations = unwrap(declaration.outputs[f"{name}-annotations"])
    lines += ["", "Annotations (paste under the pod template's metadata.annotations):",
              *(f"  {line}" for line in _yaml(annotations).splitlines())]
    return "\n".join(lines) + "\n"


def _accounts(role: Mapping[str, Any]) -> str:
    return ", ".join(f"{namespace}/{account}" for namespace in role["boundServiceAccountNamespaces"]
                     for account in role["boundServiceAccountNames"])


def _policy_texts(declaration: Declaration, names: list[str]) -> dict[str, str]:
    declared = {r.inputs["name"]: unwrap(r.inputs["policy"]) for r in declaration.of_type(POLICY)}
    return {name: declared[name] for name in names if name in declared}


def _reach(declaration: Declaration, acl: Acl) -> Iterator[str]:
    """One line per declared object the token may use, with how."""
    for secret in _inputs(declaration, KV_SECRET):
        path = f"{secret['mount']}/data/{secret['name']}"
        if acl.allows("read", path):
            yield f"KV secret {secret['name']}: read ({path})"
    for role in _inputs(declaration, DATABASE_ROLE):
        path = f"{role['backend']}/creds/{role['name']}"
        if acl.allows("read", path):
            yield (f"database role {role['name']}: new credentials ({path}), lease {_duration(role['defaultTtl'])}, "
                   f"renewable up to {_duration(role['maxTtl'])}")
    for role in _inputs(declaration, STATIC_ROLE):
        path = f"{role['backend']}/static-creds/{role['name']}"
        if acl.allows("read", path):
            yield f"static database role {role['name']}: the credentials of user {role['username']} ({path})"
    for key in _inputs(declaration, TRANSIT_KEY):
        operations = [op for op in TRANSIT_OPERATIONS if acl.allows("update", f"{key['backend']}/{op}/{key['name']}")]
        if operations:
            yield f"transit key {key['name']} ({key['type']}): {', '.join(operations)}"
    for role in _inputs(declaration, PKI_ROLE):
        operations = [op for op in ("issue", "sign") if acl.allows("update", f"{role['backend']}/{op}/{role['name']}")]
        if operations:
            yield (f"PKI role {role['name']}: {', '.join(operations)} certificates for "
                   f"{', '.join(role['allowedDomains'])}, up to {_duration(role['maxTtl'])}")


def _inputs(declaration: Declaration, type_token: str) -> list[Mapping[str, Any]]:
    resources: list[DeclaredResource] = sorted(declaration.of_type(type_token), key=lambda r: r.name)
    return [unwrap(r.inputs) for r in resources]


def _duration(seconds: Any) -> str:
    return format_duration(int(float(seconds)))


class _BlockDumper(yaml.SafeDumper):
    """Multi-line values (the injector's templates) as ``|`` blocks, as a person writes them."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_BlockDumper.add_representer(str, _represent_text)


def _yaml(value: Mapping[str, Any]) -> str:
    return yaml.dump(dict(value), Dumper=_BlockDumper, sort_keys=False, default_flow_style=False, width=1000)
