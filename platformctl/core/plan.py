"""The plan: what a stack declares, as text for a person or as JSON for tools (the PR diff)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from .declaration import Declaration, DeclaredResource, masked
from .stack_config import StackConfig

HIDDEN_INPUTS = ("apiVersion", "kind")


def plan_document(declaration: Declaration) -> dict[str, Any]:
    """A JSON-ready plan, secrets masked: resources keyed by name, in declaration order."""
    return {
        "stack": declaration.stack,
        "error": declaration.error,
        "warnings": list(declaration.warnings),
        "resources": {
            resource.name: {
                "type": resource.type,
                "parent": _short(resource.parent),
                "protect": resource.protect,
                "inputs": masked({k: v for k, v in resource.inputs.items() if k not in HIDDEN_INPUTS}),
            }
            for resource in declaration.resources
        },
        "outputs": masked(declaration.outputs),
        "stacks": dict(declaration.fingerprints),
    }


def fingerprint(declaration: Declaration) -> str:
    """The SHA-256 of what one stack's run declared, as its plan document shows it (secrets masked: a
    secret's change comes from the stack file, which every stack of its environment reads), whatever
    the order the engine registered resources or the program logged warnings in. Two runs with the same
    fingerprint declare the same: a preview of the second shows what one of the first would."""
    document = plan_document(declaration)
    content = {key: document[key] for key in ("error", "resources", "outputs")}
    content["warnings"] = sorted(document["warnings"])
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def plan_json(declaration: Declaration) -> str:
    return json.dumps(plan_document(declaration), indent=2, sort_keys=True) + "\n"


def plan_text(declaration: Declaration, stack: StackConfig) -> str:
    """The plan as a platform engineer reads it: a resource tree with the settings that matter."""
    lines = [f"Plan of stack {declaration.stack!r} (project vault-platform)",
             "Evaluated by the real program with Pulumi's mock engine: nothing was deployed. Secrets: [secret]."]
    if stack.placeholders:
        lines.append("Placeholders (not decrypted or not set on this machine): " + ", ".join(stack.placeholders))
    if declaration.error is not None:
        lines += ["", f"REFUSED: {declaration.error}"]
        return "\n".join(lines) + "\n"
    # By name, not in registration order: the engine registers resources in whatever order their
    # inputs resolve, which changes from run to run, and two plans must compare line by line.
    by_name = sorted(declaration.resources, key=lambda resource: resource.name)
    children: dict[str, list[DeclaredResource]] = {}
    for resource in by_name:
        children.setdefault(resource.parent, []).append(resource)
    urns = {resource.urn for resource in declaration.resources}
    roots = [r for r in by_name if r.parent not in urns]
    lines.append("")
    for resource in roots:
        lines += _tree(resource, children, 0)
    counts: dict[str, int] = {}
    for resource in declaration.resources:
        if resource.custom:
            counts[resource.type] = counts.get(resource.type, 0) + 1
    lines += ["", f"{sum(counts.values())} resources:"]
    lines += [f"  {count:4d}  {type_token}" for type_token, count in sorted(counts.items())]
    if declaration.outputs:
        lines += ["", "Stack outputs:"]
        for key, value in masked(declaration.outputs).items():
            lines += _setting(key, value, 1)
    for warning in declaration.warnings:
        lines += ["", f"warning: {warning}"]
    return "\n".join(lines) + "\n"


def _tree(resource: DeclaredResource, children: Mapping[str, list[DeclaredResource]], depth: int) -> list[str]:
    indent = "  " * depth
    flags = "  [protected]" if resource.protect else ""
    lines = [f"{indent}+ {resource.type}  {resource.name}{flags}"]
    for key, value in sorted(masked(resource.inputs).items()):
        if key not in HIDDEN_INPUTS:
            lines += _setting(key, value, depth + 2)
    for child in children.get(resource.urn, []):
        lines += _tree(child, children, depth + 1)
    return lines


def _setting(key: str, value: Any, depth: int) -> list[str]:
    indent = "  " * depth
    if isinstance(value, str) and "\n" in value:
        return [f"{indent}{key}: |", *(f"{indent}  {line}" for line in value.rstrip("\n").split("\n"))]
    if isinstance(value, Mapping):
        return [line for k, v in sorted(value.items()) for line in _setting(f"{key}.{k}", v, depth)] or [
            f"{indent}{key}: {{}}"]
    if isinstance(value, list) and any(isinstance(item, Mapping | list) for item in value):
        return [line for i, v in enumerate(value) for line in _setting(f"{key}[{i}]", v, depth)]
    return [f"{indent}{key}: {_scalar(value)}"]


def _scalar(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # the engine carries numbers as floats
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _short(urn: str) -> str:
    return urn.rsplit("::", 1)[-1] if urn else ""


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted.key, scalar)`` pairs of a nested value."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and any(isinstance(item, Mapping | list) for item in value):
        for index, item in enumerate(value):
            yield from flatten(item, f"{prefix}[{index}]")
    else:
        yield prefix, value
