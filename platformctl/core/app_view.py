"""One application as a stack declares it (``platformctl plan <stack> --app <name>``): the identity
its pods log in with, the policies its token gets, what those reach among what the stack declares
(its entry of the access matrix, :func:`platformctl.core.declaration.access_of`, by Vault's ACL rules),
and the annotations its team pastes into the pod template.

Pure: a :class:`platformctl.core.declaration.Declaration` in, text out; everything is read from the resources
and outputs the program declares, so it shows what ``pulumi up`` would upload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from vaultmodel.access import ACL_POLICY, KUBERNETES_ROLE, Identity
from vaultmodel.durations import format_duration

from .declaration import Declaration, access_of, unwrap


class UnknownApp(LookupError):
    """The stack declares no application of that name."""


def apps(declaration: Declaration) -> list[str]:
    """The applications a stack declares: the names of its Kubernetes auth roles that have
    annotations as a stack output."""
    roles = [r.inputs["roleName"] for r in declaration.of_type(KUBERNETES_ROLE)]
    return sorted(name for name in roles if f"{name}-annotations" in declaration.outputs)


def app_text(declaration: Declaration, name: str) -> str:
    """The identity, policies, reach and annotations of application ``name``."""
    roles = [r for r in declaration.of_type(KUBERNETES_ROLE) if r.inputs["roleName"] == name]
    if not roles or f"{name}-annotations" not in declaration.outputs:
        raise UnknownApp(f"stack {declaration.stack!r} declares no application {name!r} "
                         f"(applications: {', '.join(apps(declaration)) or 'none'})")
    role = unwrap(roles[0].inputs)
    identity = _identity(declaration, f"auth/{role['backend']}/role/{name}")
    declared = {r.inputs["name"]: unwrap(r.inputs["policy"]) for r in declaration.of_type(ACL_POLICY)}
    lines = [f"Application {name!r} in stack {declaration.stack!r}", "",
             "Identity:",
             f"  Kubernetes service account {identity.subject}",
             f"  -> Vault role {name!r} at auth/{role['backend']}, audience {role.get('audience') or '(any)'}",
             f"  -> token TTL {_duration(role['tokenTtl'])}, renewable up to {_duration(role['tokenMaxTtl'])}, "
             f"policies: {', '.join(identity.policies)}",
             "", "Policies:"]
    for policy in role["tokenPolicies"]:
        text = declared.get(policy, "(not declared by the stack: grants nothing)\n")
        lines += [f"  {policy}:", *(f"    {line}" if line else "" for line in text.rstrip("\n").splitlines())]
    lines += ["", "Reach (what the token may do with what the stack declares, by Vault's ACL rules):"]
    lines += [f"  {r.target.kind} {r.target.name}: {', '.join(r.capabilities)} on {r.path}"
              for r in identity.reaches] or ["  nothing"]
    annotations = unwrap(declaration.outputs[f"{name}-annotations"])
    lines += ["", "Annotations (paste under the pod template's metadata.annotations):",
              *(f"  {line}" for line in _yaml(annotations).splitlines())]
    return "\n".join(lines) + "\n"


def _identity(declaration: Declaration, via: str) -> Identity:
    """The application's entry of the stack's access matrix (an application binds exactly one
    service account in one namespace)."""
    return next(identity for identity in access_of(declaration).identities if identity.via == via)


def _duration(seconds: Any) -> str:
    return format_duration(int(float(seconds)))


class _BlockDumper(yaml.SafeDumper):
    """Multi-line values (the injector's templates) as ``|`` blocks, as a person writes them."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_BlockDumper.add_representer(str, _represent_text)


def _yaml(value: Mapping[str, Any]) -> str:
    return yaml.dump(dict(value), Dumper=_BlockDumper, sort_keys=False, default_flow_style=False, width=1000)
