"""The access matrix (:mod:`vaultmodel.access`) as a Mermaid flowchart, which GitHub draws from a
Markdown ``mermaid`` block: identity -> auth role -> policy -> what it reaches among what the stack
declares (KV secrets, database roles, static roles, transit keys, PKI roles).

Pure: matrices in, Mermaid text out. Nothing is evaluated again: the edges are read from each
identity's entry (its role, its policies, and, for each path it reaches, the policies whose rule
decides that path: :attr:`vaultmodel.access.Reach.granted_by`).

A policy is drawn once per set of policies a token holds with it: what a policy gives depends on
the others (a more specific rule of another one wins on a path), so an edge from a policy to a
target is exactly what such a token gets through that policy, and roles, groups and platform
policies (:attr:`vaultmodel.access.AccessMatrix.platform`, each alone) holding the same set share
it. Vault's ``default`` policy is left out, of the sets too: every token but the snapshot job's
holds it, and its rules are all under mounts no secrets engine can take (``protectedMounts`` in
hashicorp/vault, vault/mount.go: ``auth/``, ``sys/``, ``cubbyhole/``, ``identity/``), so it never
decides a declared target's path. Targets are shared, so who else reaches a secret shows.

Mermaid's flowchart grammar (mermaid-js/mermaid, packages/mermaid/src/diagrams/flowchart/parser/flow.jison)
reads a quoted label up to the next ``"`` whatever it holds, and ``#name;`` / ``#35;`` as character
codes (``encodeEntities`` in packages/mermaid/src/mermaidAPI.ts). Node ids are a layer letter and a
number (``i1``, ``r1``, ``p1``, ``t1``), given in the order of the labels: letters and digits only,
never a keyword, the same for the same graph. Labels come from the branch: every character that could
end a label, a code span or the fenced block, or open an HTML tag, is written as a character code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from vaultmodel import vault_acl
from vaultmodel.access import AccessMatrix, Identity

MAX_DIFF_IDENTITIES = 40
"""At most this many changed identities in a diff graph (GitHub refuses to draw a very large
diagram); the others are named in the list beside it."""

GAINED_STYLE = "stroke:#1a7f37,stroke-width:3px,color:#1a7f37"
LOST_STYLE = "stroke:#cf222e,color:#cf222e"
CHANGED_STYLE = "stroke:#9a6700,stroke-width:3px,color:#9a6700"

_IDENTITY, _ROLE, _POLICY, _TARGET = range(4)
_LAYER_LETTER = "irpt"
_SHAPES = (('(["', '"])'), ('["', '"]'), ('{{"', '"}}'), ('[("', '")]'))  # stadium, box, hexagon, cylinder
_ESCAPES = {"#": "#35;", '"': "#quot;", "`": "#96;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "|": "#124;"}


@dataclass(frozen=True, order=True)
class Node:
    """A box of the graph."""

    layer: int
    """0 identity, 1 auth role, 2 policy, 3 target: the column it is drawn in."""
    label: str
    """What it shows."""
    key: tuple[str, ...] = ()
    """What tells apart two nodes with the same label: for a policy, the set it is held with."""
    operations: tuple[str, ...] = field(default=(), compare=False)
    """A target's operations (:attr:`vaultmodel.access.Target.operations`), for the edges' labels."""


Fact = tuple[str, str]
"""(operation, capability): what a policy gives on a target."""
Edges = dict[tuple[Node, Node], frozenset[Fact]]
"""Each edge, with what it carries (nothing for identity -> role -> policy)."""


def _entry_edges(entry: Identity, *, platform: bool) -> tuple[Node, Edges]:
    """One entry's node (its identity, or a platform policy) and every edge below it."""
    held = tuple(sorted(name for name in entry.policies if name != vault_acl.DEFAULT_POLICY_NAME))
    policies = {name: Node(_POLICY, name, held) for name in entry.policies}
    edges: Edges = {}
    if platform:  # evaluated alone
        (root,) = policies.values()
    else:
        root, role = Node(_IDENTITY, entry.subject), Node(_ROLE, entry.via)
        edges[root, role] = frozenset()
        for name in held:
            edges[role, policies[name]] = frozenset()
    for reach in entry.reaches:
        target = reach.target
        node = Node(_TARGET, f"{target.kind} {target.mount}/{target.name}", operations=target.operations)
        operation = target.operations[target.paths.index(reach.path)]
        for name, capabilities in reach.granted_by:
            edge = (policies[name], node)
            edges[edge] = edges.get(edge, frozenset()) | {(operation, c) for c in capabilities}
    return root, edges


def _matrix_edges(matrix: AccessMatrix, subjects: set[str] | None = None) -> tuple[set[Node], Edges]:
    """The entries of ``matrix`` (those of ``subjects`` only, if given): their nodes and edges."""
    roots: set[Node] = set()
    edges: Edges = {}
    entries = [(entry, False) for entry in matrix.identities] + [(entry, True) for entry in matrix.platform]
    for entry, platform in entries:
        if subjects is None or entry.subject in subjects:
            root, found = _entry_edges(entry, platform=platform)
            roots.add(root)
            for edge, facts in found.items():  # two subjects of one role share its edges
                edges[edge] = edges.get(edge, frozenset()) | facts
    return roots, edges


@dataclass(frozen=True)
class _Drawn:
    """An edge as drawn: its arrow (``-->``, thick ``==>``, dashed ``-.->``), label and link style."""

    source: Node
    target: Node
    arrow: str
    label: str
    style: str | None


def stack_graph(matrix: AccessMatrix) -> str:
    """Every identity and platform policy of a stack, and what each reaches, as Mermaid
    (``platformctl access <stack> --format mermaid``). An edge to a target says what it gives there:
    ``data, metadata: read``, or ``all: ...`` when every operation gets the same."""
    roots, edges = _matrix_edges(matrix)
    if not roots:
        return "flowchart LR\n  empty[\"No Vault identity or policy is declared (cluster only)\"]\n"
    return _render(roots, [_Drawn(source, target, "-->", _label(target, facts), None)
                           for (source, target), facts in edges.items()])


@dataclass(frozen=True)
class DiffGraph:
    """A diff graph and the identities it leaves out."""

    mermaid: str
    """The flowchart."""
    shown: tuple[str, ...]
    """The identities drawn, by name."""
    left_out: tuple[str, ...]
    """The changed identities beyond the limit, by name."""


def diff_graph(before: AccessMatrix, after: AccessMatrix, subjects: Iterable[str],
               limit: int = MAX_DIFF_IDENTITIES) -> DiffGraph:
    """What changes for the identities ``subjects`` (those of
    :func:`vaultmodel.access.access_changes`) from ``before`` to ``after``: the first ``limit`` by
    name, each with its role and policies on either side, and every edge to a target whose
    capabilities change. A gained edge is thick and green, labelled ``+``; a lost one dashed and
    red, labelled ``-``; one whose capabilities change, thick and amber, with each operation that
    changes and its capabilities marked ``+`` (gained) or ``-`` (lost). A target reached the same
    way on both sides is not drawn (the stack's graph has it)."""
    chosen = sorted(set(subjects))
    shown = set(chosen[:limit])
    old_roots, old = _matrix_edges(before, shown)
    new_roots, new = _matrix_edges(after, shown)
    drawn = []
    for source, target in old.keys() | new.keys():
        was, now = old.get((source, target)), new.get((source, target))
        if was is None and now is not None:
            drawn.append(_Drawn(source, target, "==>", _signed("+", _label(target, now)), GAINED_STYLE))
        elif now is None and was is not None:
            drawn.append(_Drawn(source, target, "-.->", _signed("-", _label(target, was)), LOST_STYLE))
        elif was is not None and now is not None and was != now:
            drawn.append(_Drawn(source, target, "==>", _changes(target, was, now), CHANGED_STYLE))
        elif target.layer != _TARGET:
            drawn.append(_Drawn(source, target, "-->", "", None))
    return DiffGraph(_render(old_roots | new_roots, drawn), tuple(chosen[:limit]), tuple(chosen[limit:]))


def _label(target: Node, facts: frozenset[Fact]) -> str:
    """What an edge to ``target`` gives: its operations grouped by capabilities (``data, metadata:
    read; destroy: update``), or ``all: ...``."""
    by_operation = {operation: _ordered(c for op, c in facts if op == operation) for operation in target.operations}
    groups: dict[tuple[str, ...], list[str]] = {}
    for operation, capabilities in by_operation.items():
        if capabilities:
            groups.setdefault(capabilities, []).append(operation)
    if len(groups) == 1 and all(by_operation.values()):
        return f"all: {', '.join(next(iter(groups)))}"
    return "; ".join(f"{', '.join(operations)}: {', '.join(capabilities)}"
                     for capabilities, operations in groups.items())


def _changes(target: Node, was: frozenset[Fact], now: frozenset[Fact]) -> str:
    """Each operation whose capabilities change: ``creds: +read; roles: -delete``."""
    parts = []
    for operation in target.operations:
        before = {c for op, c in was if op == operation}
        after = {c for op, c in now if op == operation}
        if before != after:
            marked = [("" if c in before and c in after else "+" if c in after else "-") + c
                      for c in _ordered(before | after)]
            parts.append(f"{operation}: {', '.join(marked)}")
    return "; ".join(parts)


def _signed(sign: str, label: str) -> str:
    return f"{sign} {label}" if label else sign


def _ordered(capabilities: Iterable[str]) -> tuple[str, ...]:
    given = set(capabilities)
    return tuple(c for c in vault_acl.CAPABILITIES if c in given)


def _render(roots: Iterable[Node], drawn: list[_Drawn]) -> str:
    nodes = sorted({*roots, *(edge.source for edge in drawn), *(edge.target for edge in drawn)})
    counts = [0] * len(_LAYER_LETTER)
    ids: dict[Node, str] = {}
    for node in nodes:
        counts[node.layer] += 1
        ids[node] = f"{_LAYER_LETTER[node.layer]}{counts[node.layer]}"
    lines = ["flowchart LR"]
    for node in nodes:
        opening, closing = _SHAPES[node.layer]
        lines.append(f"  {ids[node]}{opening}{_escaped(node.label)}{closing}")
    styles: dict[str, list[str]] = {}
    for index, edge in enumerate(sorted(drawn, key=lambda edge: (edge.source, edge.target))):
        label = f'|"{_escaped(edge.label)}"|' if edge.label else ""
        lines.append(f"  {ids[edge.source]} {edge.arrow}{label} {ids[edge.target]}")
        if edge.style is not None:
            styles.setdefault(edge.style, []).append(str(index))
    lines += [f"  linkStyle {','.join(indices)} {style}" for style, indices in styles.items()]
    return "\n".join(lines) + "\n"


def _escaped(text: str) -> str:
    return "".join(_ESCAPES.get(character, character) for character in " ".join(text.split()))
