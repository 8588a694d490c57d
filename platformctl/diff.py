"""Two plans (:func:`platformctl.plan.plan_document`) -> a Markdown diff of what a stack declares:
the access each identity gains and loses first, then the resources added, removed and changed,
setting by setting, for a pull request comment.

Pure: plan documents in, text out. Secrets are already masked in a plan document, so a changed
secret value is invisible here; a secret that appears or disappears shows as ``[secret]``."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from components.access import AccessChange, access_changes

from .plan import flatten

UNSET = "(unset)"
_BACKTICKS = re.compile(r"`+")


@dataclass(frozen=True)
class SettingChange:
    """One setting of one resource whose value differs."""

    key: str
    """Dotted key, e.g. ``values.server.ha.replicas``."""
    base: Any
    """Value on the base branch, or :data:`UNSET`."""
    head: Any
    """Value on the branch, or :data:`UNSET`."""


@dataclass(frozen=True)
class ResourceChange:
    """A resource declared on both sides with different settings or options."""

    name: str
    """Logical name."""
    type: str
    """Type token (on the branch)."""
    settings: tuple[SettingChange, ...]
    """What differs, sorted by key; the type, the parent and ``protect`` count as settings too."""


@dataclass(frozen=True)
class PlanDiff:
    """What changes between two plans of one stack."""

    stack: str
    """Stack name."""
    added: tuple[tuple[str, str], ...]
    """(name, type) of the resources only the branch declares."""
    removed: tuple[tuple[str, str], ...]
    """(name, type) of the resources only the base declares."""
    changed: tuple[ResourceChange, ...]
    """Resources on both sides that differ."""
    outputs: tuple[SettingChange, ...]
    """Stack outputs that differ."""
    base_error: str | None
    """The program's refusal on the base, if any."""
    head_error: str | None
    """The program's refusal on the branch, if any."""
    access: tuple[AccessChange, ...] = ()
    """Per identity, the access gained and lost (empty when a side is refused: not computed)."""

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.outputs) and self.base_error == self.head_error


def diff_plans(base: Mapping[str, Any], head: Mapping[str, Any]) -> PlanDiff:
    """What changes from plan ``base`` to plan ``head``."""
    base_resources: Mapping[str, Any] = base.get("resources") or {}
    head_resources: Mapping[str, Any] = head.get("resources") or {}
    changed = []
    for name, after in head_resources.items():
        before = base_resources.get(name)
        if before is None:
            continue
        settings = _settings(_comparable(before), _comparable(after))
        if settings:
            changed.append(ResourceChange(name=name, type=after.get("type", ""), settings=settings))
    return PlanDiff(
        stack=str(head.get("stack") or base.get("stack") or ""),
        added=tuple((n, r.get("type", "")) for n, r in head_resources.items() if n not in base_resources),
        removed=tuple((n, r.get("type", "")) for n, r in base_resources.items() if n not in head_resources),
        changed=tuple(changed),
        outputs=_settings(base.get("outputs") or {}, head.get("outputs") or {}),
        base_error=base.get("error"),
        head_error=head.get("error"),
        access=access_changes(_declared(base_resources), _declared(head_resources))
        if base.get("error") is None and head.get("error") is None else (),
    )


def _declared(resources: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(str(r.get("type", "")), r.get("inputs") or {}) for r in resources.values()]


def _comparable(resource: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": resource.get("type"), "parent": resource.get("parent"), "protect": resource.get("protect"),
            "inputs": resource.get("inputs") or {}}


def _settings(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[SettingChange, ...]:
    old, new = dict(_flat(before)), dict(_flat(after))
    return tuple(SettingChange(key, old.get(key, UNSET), new.get(key, UNSET))
                 for key in sorted(old.keys() | new.keys()) if old.get(key, UNSET) != new.get(key, UNSET))


def _flat(value: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """:func:`flatten`, with lists of multi-line strings (SQL statements) split item by item."""
    for key, item in flatten(value):
        if isinstance(item, list) and any(isinstance(entry, str) and "\n" in entry for entry in item):
            yield from ((f"{key}[{index}]", entry) for index, entry in enumerate(item))
        else:
            yield key, item


def render_markdown(diff: PlanDiff, base_label: str) -> str:
    """The diff as Markdown: a heading, a summary line, then each added, removed and changed
    resource; multi-line settings (Raft config, ACL policy HCL) as a fenced unified diff."""
    lines = [f"### Stack {_inline(diff.stack)}: branch vs {_inline(base_label)}", ""]
    if diff.head_error is not None:
        lines += [f"**The program refuses this branch's config:** {_inline(diff.head_error)}", ""]
    if diff.base_error is not None and diff.base_error != diff.head_error:
        lines += [f"The base refused its config: {_inline(diff.base_error)}", ""]
    lines += access_section(diff)
    if diff.empty:
        lines.append("No change in the declared resources, their settings or the stack outputs.")
        return "\n".join(lines) + "\n"
    lines += [f"**{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed** "
              f"(secrets masked as `[secret]`).", ""]
    for title, sign, entries in (("Added", "+", diff.added), ("Removed", "-", diff.removed)):
        if entries:
            lines += [f"#### {title}", ""]
            lines += [f"- {sign} {_inline(name)} ({_inline(type_token)})" for name, type_token in entries]
            lines.append("")
    if diff.changed:
        lines += ["#### Changed", ""]
        for resource in diff.changed:
            lines += [f"- {_inline(resource.name)} ({_inline(resource.type)})", ""]
            lines += _changes(resource.settings)
    if diff.outputs:
        lines += ["#### Stack outputs", ""]
        lines += _changes(diff.outputs)
    return "\n".join(lines).rstrip("\n") + "\n"


def access_section(diff: PlanDiff) -> list[str]:
    """"Access changes": per identity, each path where it gains or loses capabilities, by Vault's ACL
    rules on what each side declares (``platformctl access``)."""
    lines = ["#### Access changes", ""]
    if diff.base_error is not None or diff.head_error is not None:
        return [*lines, "Not computed: the program refuses a side's config.", ""]
    if not diff.access:
        return [*lines, "No access changes: every identity reaches exactly what it reached on the base.", ""]
    for change in diff.access:
        who = _inline(change.subject) + {"new": " (new)", "removed": " (removed)"}.get(change.status, "")
        lines += [f"- {who} **gains** {', '.join(caps)} on {_inline(path)}" for path, caps in change.gained]
        lines += [f"- {who} loses {', '.join(caps)} on {_inline(path)}" for path, caps in change.lost]
        if not change.gained and not change.lost:
            lines.append(f"- {who}: reaches nothing")
    return [*lines, ""]


def _changes(settings: tuple[SettingChange, ...]) -> list[str]:
    table = [change for change in settings if not _multiline(change)]
    lines = []
    if table:
        lines += ["  | setting | base | branch |", "  | --- | --- | --- |"]
        lines += [f"  | `{_cell(c.key)}` | {_value(c.base)} | {_value(c.head)} |" for c in table]
        lines.append("")
    for change in settings:
        if _multiline(change):
            before = "" if change.base == UNSET else str(change.base)
            after = "" if change.head == UNSET else str(change.head)
            body = list(difflib.unified_diff(before.splitlines(), after.splitlines(), "base", "branch",
                                             lineterm="", n=2))
            fence = _fence(body)
            lines += [f"  `{_cell(change.key)}`:", "", f"  {fence}diff", *(f"  {line}" for line in body),
                      f"  {fence}", ""]
    return lines


def _fence(body: list[str]) -> str:
    """A backtick fence longer than any run of backticks in ``body`` (at least three), so that no line
    of a value can close the fenced block early and be read as Markdown."""
    longest = max((len(run) for line in body for run in _BACKTICKS.findall(line)), default=0)
    return "`" * max(3, longest + 1)


def _multiline(change: SettingChange) -> bool:
    return any(isinstance(value, str) and "\n" in value for value in (change.base, change.head))


def _value(value: Any) -> str:
    if value == UNSET:
        return f"_{UNSET}_"
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # the engine carries numbers as floats
    text = value if isinstance(value, str) else json.dumps(value)
    return f"`{_cell(text)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def _inline(text: str) -> str:
    return f"`{_cell(text)}`" if text else ""
