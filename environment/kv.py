"""The ``kv`` section of the stack config, and each application's own ``secrets``: the KV v2 mount and
the secrets declared in it; and what a reference to an undeclared KV path meant.

Called by :func:`environment.loader.load_spec`; every refusal is a :class:`SpecError` that names the key.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Set
from dataclasses import replace
from functools import partial
from typing import Any

from vaultmodel import rules
from vaultmodel.durations import DAY, HOUR, format_duration

from ._reader import K8S_LABEL, SQL_IDENTIFIER, VAULT_NAME, Node, attempt, check_name, collecting, declared, matches
from .apps import AppNode, Origins, own_name
from .model import Kv, KvSecret, SecretValue, Tier
from .stack_keys import SecretRefs

DEFAULT_PATH_PREFIX: dict[Tier, str] = {"dev": "development", "staging": "staging", "prod": "production"}


def load_kv(node: Node, tier: Tier, secrets: SecretRefs, app_nodes: list[AppNode], origins: Origins) -> Kv:
    cas_required = node.boolean("casRequired", tier == "prod")
    if (problem := rules.cas_required(cas_required, tier)) is not None:
        raise node.error("casRequired", problem, "remove the setting or set it to true", edit=True)
    path_prefix = node.string("pathPrefix", DEFAULT_PATH_PREFIX[tier], rule=K8S_LABEL)
    kv_secrets: dict[str, KvSecret] = {}
    # The platform's secrets, then each application's own ("secrets" in its file, the same shape).
    declaring: list[tuple[Node, AppNode | None]] = [(node, None), *((app, app) for app in app_nodes)]
    for where, app in declaring:
        # One file's malformed "secrets" leaves the others' to be read.
        declared_here = attempt(partial(where.mapping, "secrets"), broken="kv.secrets:*") or {}
        for name, body in sorted(declared_here.items()):
            item = f"kv.secrets:{path_prefix}/{name}"
            with collecting(broken=item):
                if app is not None:
                    own_name(app, app, f"secrets.{name}", name)
                secret = _kv_secret(where, name, body, path_prefix, secrets)
                if app is not None:
                    secret = replace(secret, owner=app.app.file.name)
                if name in kv_secrets:
                    raise where.error(f"secrets.{name}", f"KV secret {name!r} is declared {origins.described(item)} "
                                      "already", "give each secret its own name")
                kv_secrets[name] = secret
                origins.add(item, where.path(f"secrets.{name}"), app)
    delete_after = node.duration("deleteVersionAfter", 0)
    minimum = MIN_DELETE_VERSION_AFTER[tier != "dev"]
    if 0 < delete_after < minimum:
        raise node.error("deleteVersionAfter", f"{node.written('deleteVersionAfter', delete_after)} would "
                         "soft-delete every version, the current one too, that soon after it is written; "
                         f"{tier} keeps a version at least {format_duration(minimum)}",
                         f"use 0 (keep versions until maxVersions drops them) or at least {format_duration(minimum)}",
                         edit="0")
    kv = Kv(
        mount=node.string("mount", "secret", rule=VAULT_NAME),
        max_versions=node.integer("maxVersions", 10, minimum=1, maximum=MAX_KV_VERSIONS,
                                  why="every version is kept in Raft storage and in every snapshot"),
        cas_required=cas_required,
        delete_version_after=delete_after,
        path_prefix=path_prefix,
        secrets=tuple(secret for _, secret in sorted(kv_secrets.items())),
    )
    node.done()
    return kv


# Vault's KV v2 gives every new version a deletion time of its write time plus delete_version_after
# (vault-plugin-secrets-kv, path_data.go), the current version included: a short value makes the
# secret unreadable soon after each write. Dev may try it out; elsewhere a month is the floor.
MIN_DELETE_VERSION_AFTER = (HOUR, 30 * DAY)
MAX_KV_VERSIONS = 100
# Generated secrets: 16 characters (about 95 bits) at least; beyond 256 a length is a typo (an extra
# zero), not a requirement of any client.
GENERATED_LENGTH = (16, 256)


def _kv_secret(node: Node, name: str, body: Any, path_prefix: str, secrets: SecretRefs) -> KvSecret:
    check_name(node, f"secrets.{name}", name, K8S_LABEL)
    secret_node = Node.of(node.stack, node.path(f"secrets.{name}"), body)
    data = secret_node.child("data")
    sources = []
    for key in sorted(data.keys()):
        check_name(data, key, key, SQL_IDENTIFIER)
        sources.append((key, _secret_value(data, key, secrets)))
    if not sources:
        raise secret_node.error("data", "declares no keys", "give the secret at least one key")
    secret = KvSecret(name=name, path=f"{path_prefix}/{name}", values=tuple(sources),
                      cas_version=secret_node.integer("casVersion", 0))
    data.done()
    secret_node.done()
    return secret


def _secret_value(node: Node, key: str, secrets: SecretRefs) -> SecretValue:
    value = node.raw(key)
    if isinstance(value, Mapping) and "random" in value:
        source = node.child(key)
        generator = source.child("random")
        length = generator.integer("length", 32, minimum=GENERATED_LENGTH[0], maximum=GENERATED_LENGTH[1])
        generator.done()
        source.done()
        return SecretValue(config_key=None, random_length=length)
    return SecretValue(config_key=secrets.reference(node, key), random_length=None)


def undeclared_kv_path(target: str, kv: Kv, kv_paths: Set[str]) -> tuple[str, str, str, str | None]:
    """A reference to an undeclared KV path: what it names, what is wrong, the fix, and the path meant
    when there is one.

    Secrets are declared by name and live under the environment's prefix: ``api-service`` is
    ``production/api-service`` in prod, and saying so is the whole fix."""
    what = f"KV path {target!r}"
    prefixed = f"{kv.path_prefix}/{target}"
    if matches(prefixed, kv_paths):
        return what, f"misses the environment's prefix {kv.path_prefix + '/'!r}", f"write {prefixed!r}", prefixed
    _, _, tail = target.partition("/")
    if tail and matches(f"{kv.path_prefix}/{tail}", kv_paths):
        meant = f"{kv.path_prefix}/{tail}"
        return what, f"has another environment's prefix (this stack's is {kv.path_prefix!r})", \
            f"write {meant!r}", meant
    close = difflib.get_close_matches(target, sorted(kv_paths), n=1, cutoff=0.8)
    if close:
        return what, "is not declared", f"did you mean {close[0]!r}? ({declared(kv_paths)})", close[0]
    return what, "is not declared", f"declare it under kv.secrets, or fix the path ({declared(kv_paths)})", None
