"""Helpers the test modules share: the committed stacks' config, edited copies of it, and runs of
the real program under Pulumi's mock engine."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from components.environment import EnvironmentSpec, load_spec
from components.render.acl import load_policy_files
from platformctl.engine import Declaration, declare
from platformctl.stackfile import StackConfig, read_stack

STACKS = ("dev", "staging", "prod")
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def edited(stack: str, changes: Mapping[str, Any] | None = None, *, configured: bool = True,
           secret_keys: set[str] | None = None) -> StackConfig:
    """The committed stack's config with ``changes`` applied.

    A change's key is a full key with an optional ``--path``-style tail
    (``vault-platform:cluster.replicas``, ``vault-platform:apps[0].namespace``); the value
    ``DELETE`` removes the key. ``secret_keys`` replaces the set of keys stored as secrets.
    """
    base = read_stack(stack, configured=configured)
    config = copy.deepcopy(dict(base.config))
    for path, value in (changes or {}).items():
        _set_path(config, path, value)
    keys = frozenset(secret_keys) if secret_keys is not None else base.secret_keys
    return StackConfig(base.stack, config, keys, base.placeholders, base.tags)


def spec_of(stack: str, changes: Mapping[str, Any] | None = None, **kwargs: Any) -> EnvironmentSpec:
    edit = edited(stack, changes, **kwargs)
    reserved = [document.name for document in load_policy_files()]
    return load_spec(edit.stack, edit.config, edit.secret_keys, reserved)


def declare_stack(stack: str, changes: Mapping[str, Any] | None = None, **kwargs: Any) -> Declaration:
    edit = edited(stack, changes, **kwargs)
    return declare(edit.stack, edit.config, edit.secret_keys)


DELETE = object()


def _set_path(config: dict[str, Any], path: str, value: Any) -> None:
    namespace, _, rest = path.partition(":")
    steps: list[str | int] = [int(index) if index else name for name, index in _SEGMENT.findall(rest)]
    node: Any = config
    first = f"{namespace}:{steps[0]}"
    keys: list[str | int] = [first, *steps[1:]]
    for step in keys[:-1]:
        node = node[step] if isinstance(step, int) else node.setdefault(step, {})
    last = keys[-1]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list) and last == len(node):
        node.append(value)  # "[n]" one past the end adds an item
    else:
        node[last] = value
