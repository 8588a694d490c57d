"""Reads ``stacks/Pulumi.<stack>.yaml`` the way the Pulumi CLI hands it to the program, with the
application files the program reads beside it (``apps/``), for runs without the CLI. Encrypted
(``secure:``) values cannot be decrypted here, and the secrets the spec references are usually set
only on the machines that deploy: both are replaced by placeholders, which stay secrets and are
shown masked. Nothing else is filled in: a stack file without a Vault login plans as the program
would run it (refused, or cluster-only when it says so), so that a pull request that drops the
login shows in the plan diff."""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from environment import LOGIN_KEYS, PROJECT, EnvironmentSpec, SpecError, load_policy_files, load_spec, stack_parts
from environment._reader import YamlFileError, parse_yaml
from environment.apps import Apps, read_apps
from platformctl.core.stack_config import StackConfig

from .engine import ROOT

PLACEHOLDER = "placeholder-not-decrypted"
CLUSTER_ONLY = f"{PROJECT}:clusterOnly"


def stack_file(stack: str, root: Path = ROOT) -> Path:
    """The stack's file; for a team's stack (``prod.payments``), its environment's, of which
    ``platformctl team-stacks`` writes the team's verbatim copy for the CLI."""
    return root / "stacks" / f"Pulumi.{environment_of(stack)}.yaml"


def environment_of(stack: str) -> str:
    """The environment a stack belongs to: itself, or for a team's stack (``prod.payments``) ``prod``."""
    return stack_parts(stack)[0]


def read_stack(stack: str, root: Path = ROOT, apps: Apps | None = None) -> StackConfig:
    """The stack's config, secrets replaced by placeholders, and the project's applications (``apps``
    when they were read already)."""
    path = stack_file(stack, root)
    if not path.is_file():
        raise FileNotFoundError(f"no stack {stack!r}: {path.relative_to(root)} does not exist "
                                f"(stacks: {', '.join(stacks(root))})")
    return stack_config(stack, parse_stack_file(path.read_text(), str(path.relative_to(root))),
                        read_apps(root) if apps is None else apps)


class StackFileError(ValueError):
    """A stack file that is not valid YAML, or not a mapping with a ``config`` mapping; the message
    names the file, and the line and column where the parser stopped."""


def parse_stack_file(text: str, name: str) -> dict[str, Any]:
    """The document of the stack file ``text`` (``name`` is its path, for messages)."""
    try:
        document = parse_yaml(text, name) or {}
    except YamlFileError as error:
        raise StackFileError(str(error)) from None
    if not isinstance(document, dict) or not isinstance(document.get("config") or {}, dict):
        raise StackFileError(f"{name}: a stack file is a mapping whose 'config' key holds a mapping of "
                             "config keys. Fix: start it with 'config:' and indent the keys under it")
    return document


@functools.cache
def project_defaults() -> Mapping[str, Any]:
    """The ``default`` of each key ``Pulumi.yaml`` declares: the CLI hands it to the program as if the stack
    had set it (pulumi/pulumi pkg/workspace/config.go, mergeConfig), so runs without the CLI do too."""
    project = parse_yaml((ROOT / "Pulumi.yaml").read_text(), "Pulumi.yaml") or {}
    return {key: declared["default"] for key, declared in (project.get("config") or {}).items()
            if "default" in declared}


def stack_config(stack: str, document: Mapping[str, Any], apps: Apps) -> StackConfig:
    """The config of a parsed stack file ``document`` with the project's ``apps``, as :func:`read_stack`
    returns it."""
    raw: dict[str, Any] = {**project_defaults(), **(document.get("config") or {})}
    tags = raw.pop("pulumi:tags", {}) or {}
    config: dict[str, Any] = {}
    secret_keys: set[str] = set()
    placeholders: list[str] = []
    for key, value in raw.items():
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            config[key] = PLACEHOLDER
            secret_keys.add(key)
            placeholders.append(key)
        else:
            config[key] = value
    references = _secret_references([config, *(app.values for app in apps.for_stack(environment_of(stack)))])
    for reference in sorted(set(references)):
        key = f"{PROJECT}:{reference}"
        if key not in config:
            config[key] = PLACEHOLDER
            secret_keys.add(key)
            placeholders.append(key)
    stored = frozenset(key for key, value in raw.items() if isinstance(value, Mapping) and set(value) == {"secure"})
    return StackConfig(stack, config, frozenset(secret_keys), tuple(placeholders), dict(tags), stored, apps=apps)


def as_first_up(stack: StackConfig) -> StackConfig:
    """``stack`` as on a new environment's first ``pulumi up``: no Vault login yet, cluster-only stated."""
    config = {key: value for key, value in stack.config.items() if key not in LOGIN_KEYS}
    config[CLUSTER_ONLY] = True
    return StackConfig(stack.stack, config, stack.secret_keys - set(LOGIN_KEYS),
                       tuple(key for key in stack.placeholders if key not in LOGIN_KEYS), stack.tags,
                       stack.stored_secrets - set(LOGIN_KEYS), apps=stack.apps)


def _secret_references(value: Any) -> Iterator[str]:
    """Every ``{fromSecret: key}`` in a config value."""
    if isinstance(value, Mapping):
        if set(value) == {"fromSecret"} and isinstance(value["fromSecret"], str):
            yield value["fromSecret"]
            return
        for item in value.values():
            yield from _secret_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _secret_references(item)


def stacks(root: Path = ROOT) -> list[str]:
    """The environments' stacks (a team's stack file is a generated copy, not one of them)."""
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (root / "stacks").glob("Pulumi.*.yaml")
                  if p.name.count(".") == 2)


def stack_spec(stack: StackConfig, *, ci_role: str | None = None) -> EnvironmentSpec:
    """The spec of ``stack``, as the program loads it (``ci_role``: the CI job's JWT role, as the
    program reads it from its environment); raises ``SpecError`` when refused."""
    return load_spec(stack.stack, stack.config, stack.secret_keys, [d.name for d in load_policy_files()],
                     apps=stack.apps, ci_role=ci_role)


def spec_or_report(stack: str, *, ci_role: str | None = None) -> EnvironmentSpec | None:
    """The committed stack's spec for a command, or ``None`` once the reason it cannot be read (no such
    stack, or a config the spec refuses) is printed: the command then exits 2."""
    try:
        return stack_spec(read_stack(stack), ci_role=ci_role)
    except (FileNotFoundError, SpecError) as error:
        print(f"error: {error}", file=sys.stderr)
        return None


def environment_spec_or_report(stack: str) -> EnvironmentSpec | None:
    """:func:`spec_or_report` for a command about an environment's stacks: a team's stack is refused too,
    with the environment to name instead."""
    spec = spec_or_report(stack)
    if spec is not None and spec.team is not None:
        print(f"error: {stack!r} is a team's stack: name its environment, {spec.stack}", file=sys.stderr)
        return None
    return spec


def external_refusal(stack: str, why: str) -> str:
    """What a command about the Vault servers says of a stack whose Vault is external (``why``: whose
    job it is instead); the command then exits 2."""
    return (f"error: stack {stack!r}: its Vault is external ({PROJECT}:externalVault): this stack deploys no "
            f"Vault server, and {why}")
