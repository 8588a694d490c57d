"""Two plans (:func:`platformctl.core.plan.plan_document`) -> a Markdown diff of what a stack declares,
for a pull request comment a reviewer can approve from: the access each identity gains and loses
first, then each added resource with its settings (policy text, bound identities, TTLs with their
units, SQL, key settings), each removed one, each changed setting (lists and long values as a diff
of the part that differs), the stack outputs with the injector's templates folded away; a stack
with no change is one line.

Pure: plan documents in, text out. Secrets are already masked in a plan document, so a changed
secret value is invisible here; a secret that appears or disappears shows as ``[secret]``. Every
value comes from the branch (possibly a fork's): it is shown only as inline code without backticks
or inside a fence longer than any backtick run it holds, never as Markdown or HTML."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from environment.apps import Apps
from vaultmodel.access import AccessChange, AccessMatrix, access_changes, access_matrix
from vaultmodel.durations import format_duration

from .access_graph import diff_graph
from .codeowners import CODEOWNERS, Rule, owners_of
from .plan import flatten

UNSET = "(unset)"
_BACKTICKS = re.compile(r"`+")
# Settings held in whole seconds, by the last segment of their key: shown with their unit too.
_SECONDS = re.compile(r"(?i)(ttl|ttlseconds|period|deleteversionafter)$")
# A single-line value longer than this is compared as a diff rather than side by side.
_LONG = 60
# A block of an added resource longer than this is folded.
_FOLD_LINES = 15
TEMPLATE_MARK = "agent-inject-template-"
"""Annotations holding an injector template: long, read by the agent, folded in the comment."""


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
class AddedResource:
    """A resource only the branch declares, with every setting."""

    name: str
    """Logical name."""
    type: str
    """Type token."""
    protect: bool
    """Protected from deletion."""
    settings: tuple[tuple[str, Any], ...]
    """``(dotted key, value)`` of its inputs, sorted by key."""


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
    added: tuple[AddedResource, ...]
    """The resources only the branch declares."""
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
    matrices: tuple[AccessMatrix, AccessMatrix] | None = None
    """The access matrices of the base and of the branch, which :attr:`access` compares (``None``
    when a side is refused)."""

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.outputs) and self.base_error == self.head_error


@dataclass(frozen=True)
class AppChange:
    """An application file that differs between the base and the branch."""

    path: str
    """``apps/<team>/<app>.yaml``."""
    status: str
    """``added``, ``removed`` or ``changed``."""
    stacks: tuple[str, ...]
    """The stacks it runs in, on either side, sorted."""
    settings: tuple[SettingChange, ...]
    """Each key of the file that differs (``environments.prod.tokenTtl``), sorted."""


def app_changes(base: Apps, head: Apps) -> tuple[AppChange, ...]:
    """Each application file the branch adds, removes or changes, by path."""
    before = {file.path: file for file in base.files}
    after = {file.path: file for file in head.files}
    changes = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        settings = _settings(old.document if old else {}, new.document if new else {})
        if not settings and old is not None and new is not None:
            continue
        stacks = {*(old.environments() if old else ()), *(new.environments() if new else ())}
        changes.append(AppChange(path=path, status="added" if old is None else "removed" if new is None else "changed",
                                 stacks=tuple(sorted(map(str, stacks))), settings=settings))
    return tuple(changes)


def render_app_changes(changes: tuple[AppChange, ...], rules: tuple[Rule, ...], base_label: str) -> str:
    """"Applications": each application file that changes, in which stacks, who approves it (its owners
    in the base's CODEOWNERS: one approval of any of them), and each key that changes."""
    lines = ["### Applications", ""]
    if not changes:
        return "\n".join([*lines, "No application file changes.", ""])
    lines += [f"Who approves: one owner of each file, by `{CODEOWNERS}` as {_inline(base_label)} has it "
              "(GitHub reads it from the base branch).", ""]
    for change in changes:
        owners = owners_of(rules, change.path)
        approval = " or ".join(_inline(owner) for owner in owners) or "no code owner (any reviewer)"
        stacks = ", ".join(_inline(stack) for stack in change.stacks) or "no stack"
        lines += [f"- {_inline(change.path)} **{change.status}** (stacks {stacks}); approval: {approval}", ""]
        if change.status == "added":
            lines += _settings_block(tuple((c.key, c.head) for c in change.settings))
        elif change.status == "changed":
            lines += _changes(change.settings)
    return "\n".join(lines).rstrip("\n") + "\n"


def diff_plans(base: Mapping[str, Any], head: Mapping[str, Any]) -> PlanDiff:
    """What changes from plan ``base`` to plan ``head``."""
    base_resources: Mapping[str, Any] = base.get("resources") or {}
    head_resources: Mapping[str, Any] = head.get("resources") or {}
    matrices = (access_matrix(_declared(base_resources)), access_matrix(_declared(head_resources))) \
        if base.get("error") is None and head.get("error") is None else None
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
        added=tuple(AddedResource(name=n, type=r.get("type", ""), protect=bool(r.get("protect")),
                                  settings=tuple(sorted(_flat(r.get("inputs") or {}))))
                    for n, r in head_resources.items() if n not in base_resources),
        removed=tuple((n, r.get("type", "")) for n, r in base_resources.items() if n not in head_resources),
        changed=tuple(changed),
        outputs=_settings(base.get("outputs") or {}, head.get("outputs") or {}),
        base_error=base.get("error"),
        head_error=head.get("error"),
        access=access_changes(*matrices) if matrices else (),
        matrices=matrices,
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


def render_markdown(diff: PlanDiff, base_label: str, *, with_access: bool = True) -> str:
    """The diff of one stack as Markdown: one line when nothing changes; the refusal alone when the
    branch's config is refused; otherwise a heading, the access changes (unless ``with_access`` is
    false: the comment gathers them at its top), a summary line, then each added, removed and
    changed resource and the stack outputs."""
    title = f"Stack {_inline(diff.stack)}"
    if diff.head_error is not None:
        return (f"### {title}: refused\n\n**The program refuses this branch's config:** "
                f"{_inline(diff.head_error)}\n\nNothing is declared from it: fix the config to see the diff.\n")
    if diff.empty and not diff.access:
        return f"**{title}**: no change in what it declares (branch vs {_inline(base_label)}).\n"
    lines = [f"### {title}: branch vs {_inline(base_label)}", ""]
    if diff.base_error is not None:
        lines += [f"The base refused its config ({_inline(diff.base_error)}): everything is shown as added.", ""]
    if with_access:
        lines += access_section(diff)
    lines += [f"**{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed** "
              f"(secrets masked as `[secret]`).", ""]
    if diff.added:
        lines += ["#### Added", ""]
        for resource in diff.added:
            flags = " [protected]" if resource.protect else ""
            lines += [f"- + {_inline(resource.name)} ({_inline(resource.type)}){flags}", ""]
            lines += _settings_block(resource.settings)
    if diff.removed:
        lines += ["#### Removed", ""]
        lines += [f"- - {_inline(name)} ({_inline(type_token)})" for name, type_token in diff.removed]
        lines.append("")
    if diff.changed:
        lines += ["#### Changed", ""]
        for change in diff.changed:
            lines += [f"- {_inline(change.name)} ({_inline(change.type)})", ""]
            lines += _changes(change.settings)
    if diff.outputs:
        lines += ["#### Stack outputs", ""]
        lines += _outputs(diff.outputs)
    return "\n".join(lines).rstrip("\n") + "\n"


def access_section(diff: PlanDiff) -> list[str]:
    """"Access changes": per identity, each path where it gains or loses capabilities, by Vault's ACL
    rules on what each side declares (``platformctl access``)."""
    return ["#### Access changes", "", *_access_lines(diff), ""]


def _access_lines(diff: PlanDiff) -> list[str]:
    if diff.matrices is None:
        return ["Not computed: the program refuses a side's config."]
    if not diff.access:
        return ["No access changes: every identity reaches exactly what it reached on the base."]
    lines = []
    for change in diff.access:
        who = _inline(change.subject) + {"new": " (new)", "removed": " (removed)"}.get(change.status, "")
        lines += [f"- {who} **gains** {', '.join(caps)} on {_inline(path)}" for path, caps in change.gained]
        lines += [f"- {who} loses {', '.join(caps)} on {_inline(path)}" for path, caps in change.lost]
        if not change.gained and not change.lost:
            lines.append(f"- {who}: reaches nothing")
    return [*lines, "", *_access_graph(diff.stack, diff.matrices, diff.access)]


def _access_graph(stack: str, matrices: tuple[AccessMatrix, AccessMatrix], changes: tuple[AccessChange, ...]
                  ) -> list[str]:
    """The changes as a picture (GitHub draws a ``mermaid`` block): identity -> auth role -> policy
    -> target, for the identities whose access changes (at most
    :data:`platformctl.core.access_graph.MAX_DIFF_IDENTITIES`)."""
    graph = diff_graph(*matrices, (change.subject for change in changes))
    caption = ("Identity -> auth role -> policy -> what it reaches: thick green `+` gained, dashed red `-` "
               "lost, thick amber capabilities changed; a target reached as before is not drawn "
               f"(`python -m platformctl access {_cell(stack)} --format mermaid` draws the whole stack).")
    if graph.left_out:
        caption += (f" The graph shows the first {len(graph.shown)} of {len(graph.shown) + len(graph.left_out)} "
                    f"identities whose access changes, by name; the other {len(graph.left_out)} are in the list.")
    # Labels carry no backtick (character codes), so no line of the graph can close the fence.
    return [caption, "", "```mermaid", *graph.mermaid.rstrip("\n").split("\n"), "```"]


def _outputs(changes: tuple[SettingChange, ...]) -> list[str]:
    """Changed stack outputs, by output: a new one (an application's annotations) with its values,
    a removed one by name, a changed one setting by setting; injector templates folded."""
    by_output: dict[str, list[SettingChange]] = {}
    for change in changes:
        by_output.setdefault(change.key.split(".", 1)[0], []).append(change)
    lines = []
    for output, group in by_output.items():
        if all(c.base == UNSET for c in group):
            lines += [f"- + {_inline(output)}", ""]
            shown = tuple((c.key.removeprefix(output).removeprefix("."), c.head) for c in group
                          if TEMPLATE_MARK not in c.key)
            lines += _settings_block(tuple((key or "(value)", value) for key, value in shown))
        elif all(c.head == UNSET for c in group):
            lines += [f"- - {_inline(output)}", ""]
            continue
        else:
            lines += [f"- {_inline(output)}", ""]
            lines += _changes(tuple(c for c in group if TEMPLATE_MARK not in c.key))
        lines += _folded_templates(tuple(c for c in group if TEMPLATE_MARK in c.key))
    return lines


def _settings_block(settings: tuple[tuple[str, Any], ...]) -> list[str]:
    """Every setting of an added resource: a table of the short ones, then each long one as a block."""
    short = [(key, value) for key, value in settings if not _block(value)]
    lines = []
    if short:
        lines += ["  | setting | value |", "  | --- | --- |"]
        lines += [f"  | `{_cell(key)}` | {_value(value, key)} |" for key, value in short]
        lines.append("")
    for key, value in settings:
        if _block(value):
            body = value.rstrip("\n").split("\n") if isinstance(value, str) else [str(item) for item in value]
            if len(body) > _FOLD_LINES:  # the standard revocation SQL, say: there, but out of the way
                lines += [f"  <details><summary>{_cell(key)}: {len(body)} lines</summary>", "",
                          *_fenced(f"`{_cell(key)}`", _language(key), body), "  </details>", ""]
            else:
                lines += _fenced(f"`{_cell(key)}`", _language(key), body)
    return lines


def _changes(settings: tuple[SettingChange, ...]) -> list[str]:
    """Changed settings: a table of the short ones (base, branch), then each long one (multi-line, a
    list, a long line) as a diff of the part that differs."""
    table = [change for change in settings if not _as_diff(change)]
    lines = []
    if table:
        lines += ["  | setting | base | branch |", "  | --- | --- | --- |"]
        lines += [f"  | `{_cell(c.key)}` | {_value(c.base, c.key)} | {_value(c.head, c.key)} |" for c in table]
        lines.append("")
    for change in settings:
        if _as_diff(change):
            lines += _fenced(f"`{_cell(change.key)}`", "diff", _diff_lines(change.base, change.head))
    return lines


def _folded_templates(settings: tuple[SettingChange, ...]) -> list[str]:
    """The injector templates that changed, folded: the app team pastes them, the reviewer rarely
    needs them (what they read is already in the policy above)."""
    if not settings:
        return []
    what = "added" if all(c.base == UNSET for c in settings) else "changed"
    lines = [f"  <details><summary>{len(settings)} injector template(s) {what}</summary>", ""]
    for change in settings:
        lines += _fenced(f"`{_cell(change.key)}`", "diff", _diff_lines(change.base, change.head))
    return [*lines, "  </details>", ""]


def _diff_lines(base: Any, head: Any) -> list[str]:
    """``base`` -> ``head`` as diff lines: multi-line text by line, a list by item, a long line with
    ``?`` marks under the characters that differ."""
    if _is_lines(base) or _is_lines(head) or isinstance(base, list) or isinstance(head, list):
        before, after = _lines_of(base), _lines_of(head)
        # A list is short: all of it, for context; text (a policy) around what changed only.
        context = max(len(before), len(after)) if isinstance(base, list) or isinstance(head, list) else 2
        return list(difflib.unified_diff(before, after, "base", "branch", lineterm="", n=context))
    return [line.rstrip("\n") for line in difflib.ndiff([_text(base)], [_text(head)])]


def _fenced(label: str, language: str, body: list[str]) -> list[str]:
    fence = _fence(body)
    return [f"  {label}:", "", f"  {fence}{language}", *(f"  {line}" for line in body), f"  {fence}", ""]


def _fence(body: list[str]) -> str:
    """A backtick fence longer than any run of backticks in ``body`` (at least three), so that no line
    of a value can close the fenced block early and be read as Markdown."""
    longest = max((len(run) for line in body for run in _BACKTICKS.findall(line)), default=0)
    return "`" * max(3, longest + 1)


def _is_lines(value: Any) -> bool:
    return isinstance(value, str) and "\n" in value


def _lines_of(value: Any) -> list[str]:
    if value == UNSET:
        return []
    if isinstance(value, list):
        return [_text(item) for item in value]
    return str(value).splitlines()


def _block(value: Any) -> bool:
    """Shown as a block of its own rather than in a table cell: multi-line text (a policy, a
    template), or a list holding a long string (SQL statements)."""
    return _is_lines(value) or (isinstance(value, list) and any(isinstance(v, str) and len(v) > _LONG for v in value))


def _as_diff(change: SettingChange) -> bool:
    values = [v for v in (change.base, change.head) if v != UNSET]
    return any(_is_lines(v) or _block(v) or (isinstance(v, str) and len(v) > _LONG) for v in values) or (
        len(values) == 2 and all(isinstance(v, list) for v in values))


def _language(key: str) -> str:
    last = key.rsplit(".", 1)[-1]
    return "hcl" if last in ("policy", "config") else "sql" if last.endswith("Statements") else ""


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # the engine carries numbers as floats
    return value if isinstance(value, str) else json.dumps(value)


def _value(value: Any, key: str = "") -> str:
    if value == UNSET:
        return f"_{UNSET}_"
    shown = f"`{_cell(_text(value))}`"
    seconds = _seconds(value) if _SECONDS.search(key.rsplit(".", 1)[-1]) else None
    return f"{shown} ({format_duration(seconds)})" if seconds else shown


def _seconds(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and float(value).is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def _inline(text: str) -> str:
    return f"`{_cell(text)}`" if text else ""


def render_comment(diffs: list[PlanDiff], base_label: str, sections: list[str]) -> str:
    """The whole pull request comment: a title, ``sections`` (the checklist of what the change needs
    outside the repository), the access changes of every stack, then each stack's diff."""
    lines = ["## Plan diff: what this pull request changes in each stack", "",
             f"Evaluated offline by the real program with Pulumi's mock engine, against {_inline(base_label)}; "
             "secrets are masked. Locally: `python -m platformctl diff --base <ref>`.", ""]
    lines += [section.rstrip("\n") + "\n" for section in sections]
    lines += ["### Access changes", ""]
    unchanged = [d.stack for d in diffs if not d.access and d.base_error is None and d.head_error is None]
    for diff in diffs:
        if diff.stack not in unchanged:
            lines += [f"**Stack {_inline(diff.stack)}**", "", *_access_lines(diff), ""]
    if unchanged:
        lines += [f"No access changes in {', '.join(_inline(stack) for stack in unchanged)}: every identity "
                  "reaches exactly what it reached on the base.", ""]
    lines += [render_markdown(diff, base_label, with_access=False) for diff in diffs]
    return "\n".join(lines)
