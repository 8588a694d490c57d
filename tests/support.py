"""Helpers the test modules share: the committed stacks' config, edited copies of it, and runs of
the real program under Pulumi's mock engine."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import pytest

from components.environment import EnvironmentSpec, SpecError, StackRefused, load_spec
from components.environment._reader import REMOVE, label_of
from components.render.acl import load_policy_files
from platformctl.engine import Declaration, declare
from platformctl.stackfile import StackConfig, read_stack

STACKS = ("dev", "staging", "prod")
_SEGMENT = re.compile(r"([^.\[\]]+)|\[([^\[\]]+)\]")


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


def refusal(stack: str, changes: Mapping[str, Any] | None, key: str, **kwargs: Any) -> SpecError:
    """The problem reported at ``key`` when the edited stack is refused (``key`` may name list items
    by index, as in ``changes``: ``apps[0]`` is matched as the spec names it, ``apps[api-service]``)."""
    edit = edited(stack, changes, **kwargs)
    with pytest.raises(StackRefused) as refused:
        load_spec(edit.stack, edit.config, edit.secret_keys, [document.name for document in load_policy_files()])
    wanted = labelled(edit.config, key)
    found = [problem for problem in refused.value.problems if problem.key == wanted]
    assert found, f"no problem at {wanted!r} in: {refused.value}"
    return found[0]


def labelled(config: Mapping[str, Any], key: str) -> str:
    """``key`` with each list index replaced by the item's name, as the spec's messages write it."""
    namespace, _, rest = key.partition(":")
    node: Any = config
    out = f"{namespace}:"
    for position, (name, index) in enumerate(_SEGMENT.findall(rest)):
        if name:
            out += ("." if position else "") + name
            node = node.get(f"{namespace}:{name}" if position == 0 else name) if isinstance(node, Mapping) else None
        else:
            items = node if isinstance(node, list) else []
            item = items[int(index)] if int(index) < len(items) else None
            label = label_of(item)
            seen = [label_of(other) for other in items[:int(index)]]
            out += f"[{label if label is not None and label not in seen else index}]"
            node = item
    return out


def apply_edits(stack: str, changes: Mapping[str, Any] | None, edits: tuple[tuple[str, Any], ...]) -> StackConfig:
    """The edited stack with a refusal's machine-readable fix applied on top."""
    config = edited(stack, changes)
    applied = copy.deepcopy(dict(config.config))
    for key, value in edits:
        _set_path(applied, key, DELETE if value is REMOVE else value)
    return StackConfig(config.stack, applied, config.secret_keys, config.placeholders, config.tags)


def declare_stack(stack: str, changes: Mapping[str, Any] | None = None, **kwargs: Any) -> Declaration:
    edit = edited(stack, changes, **kwargs)
    return declare(edit.stack, edit.config, edit.secret_keys)


DELETE = object()


def _set_path(config: dict[str, Any], path: str, value: Any) -> None:
    namespace, _, rest = path.partition(":")
    steps: list[str | int] = [int(index) if index.isdigit() else index or name
                              for name, index in _SEGMENT.findall(rest)]
    node: Any = config
    first = f"{namespace}:{steps[0]}"
    keys: list[str | int] = [first, *steps[1:]]
    for step in keys[:-1]:
        node = node[_index_of(node, step)] if isinstance(node, list) else node.setdefault(step, {})
    last = keys[-1]
    if isinstance(node, list):
        last = _index_of(node, last)
    if value is DELETE:
        del node[last]
    elif isinstance(node, list) and last == len(node):
        node.append(value)  # "[n]" one past the end adds an item
    else:
        node[last] = value


def _index_of(items: list[Any], step: str | int) -> int:
    """``apps[0]``, or ``apps[api-service]``: the item of that name, as the spec's messages write keys."""
    if isinstance(step, int):
        return step
    return next(index for index, item in enumerate(items) if label_of(item) == step)
