"""The access graph (platformctl/core/access_graph.py): ``platformctl access <stack> --format mermaid`` and
the picture of the pull-request comment's access changes. Exact on the test stack ``access``
(tests/stacks/Pulumi.access.yaml), edited as a branch would; on every committed stack, a flowchart
of the shape Mermaid's grammar reads (mermaid-js/mermaid,
packages/mermaid/src/diagrams/flowchart/parser/flow.jison: a quoted label runs to the next ``"``,
an edge label sits between ``|`` after the arrow, ``linkStyle`` takes edge numbers from 0)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from platformctl.__main__ import main
from platformctl.core.access_graph import MAX_DIFF_IDENTITIES, DiffGraph, diff_graph, stack_graph
from platformctl.core.declaration import Declaration, access_of
from platformctl.core.diff import diff_plans
from platformctl.core.plan import plan_document
from tests.support import (
    ANY_STACK,
    DELETE,
    TEST_STACKS,
    any_stack,
    declare_config,
    declare_stack,
    with_kubernetes_role,
)
from vaultmodel.access import AccessMatrix, Identity, access_matrix

GAINED = "stroke:#1a7f37,stroke-width:3px,color:#1a7f37"
LOST = "stroke:#cf222e,color:#cf222e"
CHANGED = "stroke:#9a6700,stroke-width:3px,color:#9a6700"

_ID = r"[irpt][1-9][0-9]*"
_LABEL = r'[^"`<>|\n]*'
_NODE = re.compile(rf'  ({_ID})(\(\["{_LABEL}"\]\)|\["{_LABEL}"\]|\{{\{{"{_LABEL}"\}}\}}|\[\("{_LABEL}"\)\])')
_EDGE = re.compile(rf'  ({_ID}) (-->|==>|-\.->)(\|"{_LABEL}"\|)? ({_ID})')
_LINK_STYLE = re.compile(r"  linkStyle ([0-9]+(?:,[0-9]+)*) (stroke:#[0-9a-f]{6}(?:,[a-z-]+:[#0-9a-z]+)*)")


def plausible(mermaid: str) -> None:
    """``mermaid`` is a flowchart Mermaid reads: a header, then node lines (unique ids, each used),
    then edge lines between declared nodes, then link styles naming existing edges at most once."""
    header, *lines = mermaid.rstrip("\n").split("\n")
    assert mermaid.endswith("\n")
    assert header == "flowchart LR"
    nodes = [match.group(1) for line in lines if (match := _NODE.fullmatch(line))]
    edges = [(match.group(1), match.group(4)) for line in lines if (match := _EDGE.fullmatch(line))]
    styled = [int(n) for line in lines if (match := _LINK_STYLE.fullmatch(line)) for n in match.group(1).split(",")]
    assert len(nodes) + len(edges) + sum(1 for line in lines if line.startswith("  linkStyle ")) == len(lines), \
        [line for line in lines if not (_NODE.fullmatch(line) or _EDGE.fullmatch(line) or _LINK_STYLE.fullmatch(line))]
    assert lines == sorted(lines, key=lambda line: 0 if _NODE.fullmatch(line) else 1 if _EDGE.fullmatch(line) else 2)
    assert len(set(nodes)) == len(nodes)
    assert {end for edge in edges for end in edge} <= set(nodes)
    assert len(set(styled)) == len(styled)
    assert all(0 <= n < len(edges) for n in styled)


def node_labels(mermaid: str, layer: str) -> list[str]:
    """The labels of the nodes of one layer (``i``dentity, ``r``ole, ``p``olicy, ``t``arget), in order."""
    return [line.split('"')[1] for line in mermaid.split("\n")
            if (match := _NODE.fullmatch(line)) and match.group(1).startswith(layer)]


def test_plausible_refuses_what_mermaid_would_not_read() -> None:
    plausible('flowchart LR\n  i1(["a"])\n  r1["b"]\n  i1 ==>|"+"| r1\n  linkStyle 0 stroke:#1a7f37\n')
    for broken in ('flowchart LR\n  i1(["a"b"])\n',  # a quote ends the label early
                   'flowchart LR\n  i1(["a"])\n  i1(["b"])\n',  # one id, two nodes
                   'flowchart LR\n  i1(["a"])\n  i1 --> r1\n',  # an edge to no node
                   'flowchart LR\n  i1(["a"])\n  r1["b"]\n  i1 --> r1\n  linkStyle 1 stroke:#1a7f37\n',
                   'flowchart LR\n  i1(["```"])\n'):  # would close the Markdown fence
        with pytest.raises(AssertionError):
            plausible(broken)


@pytest.fixture(scope="module")
def access_plan() -> dict[str, Any]:
    return plan_document(declare_stack("access"))


def changed(base: dict[str, Any], head: dict[str, Any], limit: int = MAX_DIFF_IDENTITIES) -> DiffGraph:
    """The diff graph of the identities whose access changes from plan ``base`` to plan ``head``, from
    the matrices the pull-request diff computed."""
    diff = diff_plans(base, head)
    assert diff.matrices is not None
    graph = diff_graph(*diff.matrices, [change.subject for change in diff.access], limit)
    plausible(graph.mermaid)
    return graph


class TestStackGraph:
    def test_the_test_stack(self, access_plan: dict[str, Any]) -> None:
        matrix = access_matrix([(r["type"], r["inputs"]) for r in access_plan["resources"].values()])
        everything = "create, read, update, patch, delete, list"
        assert stack_graph(matrix) == "\n".join([
            "flowchart LR",
            '  i1(["payments/payments-sa"])',
            '  i2(["production/api-service-sa"])',
            '  i3(["vault/vault-snapshot"])',
            '  r1["auth/kubernetes/role/api-service"]',
            '  r2["auth/kubernetes/role/payments"]',
            '  r3["auth/kubernetes/role/vault-snapshot"]',
            '  p1{{"api-secrets"}}',
            '  p2{{"app-api-service"}}',
            '  p3{{"app-payments"}}',
            '  p4{{"operations-readonly"}}',
            '  p5{{"payments-readers"}}',
            '  p6{{"platform-admin"}}',
            '  p7{{"vault-iac"}}',
            '  p8{{"vault-preview"}}',
            # The platform policy alone and the snapshot job's role, which holds it alone: one node.
            '  p9{{"vault-snapshot"}}',
            '  t1[("KV secret secret/production/api-service")]',
            '  t2[("KV secret secret/production/payments")]',
            '  t3[("KV secret secret/production/payouts")]',
            '  t4[("PKI role pki_int/payments-api")]',
            '  t5[("database role database/api-role")]',
            '  t6[("static database role database/reporting")]',
            '  t7[("transit key transit/payments-card-data")]',
            '  t8[("transit key transit/payments-receipts")]',
            "  i1 --> r2",
            "  i2 --> r1",
            "  i3 --> r3",
            "  r1 --> p1",
            "  r1 --> p2",
            "  r2 --> p3",
            "  r2 --> p5",
            "  r3 --> p9",  # nothing below: it reaches no target
            # Both policies have the exact rule: Vault merges them, each is drawn.
            '  p1 -->|"data: read"| t1',
            '  p2 -->|"data: read"| t1',
            '  p2 -->|"creds: read"| t5',
            # The exact rule of app-payments decides data/production/payments, not the glob of
            # payments-readers, which reaches payouts and has the exact metadata rule.
            '  p3 -->|"data: read"| t2',
            '  p3 -->|"issue: update"| t4',
            '  p3 -->|"static-creds: read"| t6',
            '  p3 -->|"encrypt, decrypt: update"| t7',
            '  p4 -->|"roles: read, list"| t4',
            '  p4 -->|"roles: read, list"| t5',
            '  p4 -->|"static-roles: read, list"| t6',
            '  p4 -->|"keys, keys/config, keys/rotate: read, list"| t7',
            '  p4 -->|"keys, keys/config, keys/rotate: read, list"| t8',
            '  p5 -->|"metadata: read"| t2',
            '  p5 -->|"data: read"| t3',
            *(f'  p6 -->|"all: {everything}"| t{n}' for n in (1, 2, 3)),
            f'  p6 -->|"all: {everything}, sudo"| t4',
            *(f'  p6 -->|"all: {everything}"| t{n}' for n in (5, 6, 7, 8)),
            *(f'  p7 -->|"data: create, update, delete; metadata: read, delete"| t{n}' for n in (1, 2, 3)),
            '  p7 -->|"roles: create, read, update, delete"| t4',
            '  p7 -->|"roles: create, read, update, delete"| t5',
            '  p7 -->|"static-roles: create, read, update, delete"| t6',
            '  p7 -->|"keys, keys/config, keys/rotate: create, read, update, delete"| t7',
            '  p7 -->|"keys, keys/config, keys/rotate: create, read, update, delete"| t8',
            '  p8 -->|"roles: read, list"| t4',
            '  p8 -->|"roles: read, list"| t5',
            '  p8 -->|"static-roles: read, list"| t6',
            '  p8 -->|"keys, keys/config, keys/rotate: read, list"| t7',
            '  p8 -->|"keys, keys/config, keys/rotate: read, list"| t8',
        ]) + "\n"

    def test_a_policy_is_drawn_once_per_set_it_is_held_with(self, access_plan: dict[str, Any]) -> None:
        # reports holds api-secrets alone; audit holds it with app-api-service, as api-service does.
        head = with_kubernetes_role(access_plan, "reports", ["api-secrets"])
        head = with_kubernetes_role(head, "audit", ["app-api-service", "api-secrets"])
        graph = stack_graph(access_matrix([(r["type"], r["inputs"]) for r in head["resources"].values()]))
        plausible(graph)
        assert node_labels(graph, "r")[:2] == ["auth/kubernetes/role/api-service", "auth/kubernetes/role/audit"]
        assert node_labels(graph, "r")[3] == "auth/kubernetes/role/reports"
        assert node_labels(graph, "p")[:3] == ["api-secrets", "api-secrets", "app-api-service"]
        lines = graph.split("\n")
        assert [line for line in lines if line.startswith(("  r1 ", "  r2 ", "  r4 "))] == [
            "  r1 --> p2", "  r1 --> p3", "  r2 --> p2", "  r2 --> p3", "  r4 --> p1"]
        assert [line for line in lines if line.startswith(("  p1 ", "  p2 "))] == [
            '  p1 -->|"data: read"| t1', '  p2 -->|"data: read"| t1']

    def test_a_stack_without_vault_says_so(self) -> None:
        assert stack_graph(access_matrix([])) == (
            'flowchart LR\n  empty["No Vault identity or policy is declared (cluster only)"]\n')

    def test_labels_are_written_as_character_codes(self) -> None:
        # Names come from the branch: nothing in them may end a label, a code span or the fence.
        who = Identity('ns/sa"] --> x', "auth/k8s/role/```\nr <b>#1|&", ("p",), (), ())
        graph = stack_graph(AccessMatrix((who,), ()))
        assert graph == ("flowchart LR\n"
                         '  i1(["ns/sa#quot;] --#gt; x"])\n'
                         '  r1["auth/k8s/role/#96;#96;#96; r #lt;b#gt;#35;1#124;#amp;"]\n'
                         '  p1{{"p"}}\n'
                         "  i1 --> r1\n"
                         "  r1 --> p1\n")
        plausible(graph)


class TestDiffGraph:
    def test_a_widened_policy_is_a_gained_edge(self, access_plan: dict[str, Any]) -> None:
        head = plan_document(declare_stack("access", {"vault-platform:policies[0].rules[1]": {
            "path": "secret/data/production/payouts", "capabilities": ["read"]}}))
        graph = changed(access_plan, head)
        assert graph.mermaid == (
            "flowchart LR\n"
            '  i1(["production/api-service-sa"])\n'
            '  r1["auth/kubernetes/role/api-service"]\n'
            '  p1{{"api-secrets"}}\n'
            '  p2{{"app-api-service"}}\n'
            '  t1[("KV secret secret/production/payouts")]\n'
            "  i1 --> r1\n"
            "  r1 --> p1\n"
            "  r1 --> p2\n"  # what the app reached before (its own secret, its database role) is not drawn
            '  p1 ==>|"+ data: read"| t1\n'
            f"  linkStyle 3 {GAINED}\n")
        assert (graph.shown, graph.left_out) == (("production/api-service-sa",), ())

    def test_a_removed_app_loses_every_edge(self, access_plan: dict[str, Any]) -> None:
        head = plan_document(declare_stack("access", {"apps/payments/payments.yaml:": DELETE}))
        assert changed(access_plan, head).mermaid == (
            "flowchart LR\n"
            '  i1(["payments/payments-sa"])\n'
            '  r1["auth/kubernetes/role/payments"]\n'
            '  p1{{"app-payments"}}\n'
            '  p2{{"payments-readers"}}\n'
            '  t1[("KV secret secret/production/payments")]\n'
            '  t2[("KV secret secret/production/payouts")]\n'
            '  t3[("PKI role pki_int/payments-api")]\n'
            '  t4[("static database role database/reporting")]\n'
            '  t5[("transit key transit/payments-card-data")]\n'
            '  i1 -.->|"-"| r1\n'
            '  r1 -.->|"-"| p1\n'
            '  r1 -.->|"-"| p2\n'
            '  p1 -.->|"- data: read"| t1\n'
            '  p1 -.->|"- issue: update"| t3\n'
            '  p1 -.->|"- static-creds: read"| t4\n'
            '  p1 -.->|"- encrypt, decrypt: update"| t5\n'
            '  p2 -.->|"- metadata: read"| t1\n'
            '  p2 -.->|"- data: read"| t2\n'
            f"  linkStyle 0,1,2,3,4,5,6,7,8 {LOST}\n")

    def test_changed_capabilities_on_an_edge(self, access_plan: dict[str, Any]) -> None:
        # api-secrets lists instead of reading; app-api-service still reads the same path.
        head = copy.deepcopy(access_plan)
        policy = head["resources"]["vault-policies-api-secrets"]["inputs"]
        policy["policy"] = policy["policy"].replace('["read"]', '["list"]')
        assert changed(access_plan, head).mermaid.split("\n")[-3:] == [
            '  p1 ==>|"data: -read, +list"| t1', f"  linkStyle 3 {CHANGED}", ""]

    def test_a_platform_policy_that_gains_credentials(self, access_plan: dict[str, Any]) -> None:
        # The IaC already managed the role: only the operation that changes shows.
        head = copy.deepcopy(access_plan)
        head["resources"]["vault-policies-vault-iac"]["inputs"]["policy"] += (
            'path "database/creds/*" {\n  capabilities = ["read"]\n}\n')
        assert changed(access_plan, head).mermaid == (
            "flowchart LR\n"
            '  p1{{"vault-iac"}}\n'
            '  t1[("database role database/api-role")]\n'
            '  p1 ==>|"creds: +read"| t1\n'
            f"  linkStyle 0 {CHANGED}\n")

    def test_a_new_app_that_reaches_nothing(self, access_plan: dict[str, Any]) -> None:
        assert changed(access_plan, with_kubernetes_role(access_plan, "reports", [])).mermaid == (
            "flowchart LR\n"
            '  i1(["reports/reports-sa"])\n'
            '  r1["auth/kubernetes/role/reports"]\n'
            '  i1 ==>|"+"| r1\n'
            f"  linkStyle 0 {GAINED}\n")

    def test_at_most_forty_identities_the_first_by_name(self, access_plan: dict[str, Any]) -> None:
        assert MAX_DIFF_IDENTITIES == 40
        head = access_plan
        for number in range(42):
            head = with_kubernetes_role(head, f"app-{number:02d}", ["api-secrets"])
        graph = changed(access_plan, head)
        assert graph.shown == tuple(f"app-{n:02d}/app-{n:02d}-sa" for n in range(40))
        assert graph.left_out == ("app-40/app-40-sa", "app-41/app-41-sa")
        assert node_labels(graph.mermaid, "i") == [f"app-{n:02d}/app-{n:02d}-sa" for n in range(40)]
        assert "app-40" not in graph.mermaid
        # 40 roles holding api-secrets alone: one policy node (not api-service's, held with another).
        assert node_labels(graph.mermaid, "p") == ["api-secrets"]
        assert graph.mermaid.count(' ==>|"+"| p1\n') == 40
        assert graph.mermaid.count(' ==>|"+ data: read"| t1\n') == 1
        assert changed(access_plan, head, limit=2).shown == ("app-00/app-00-sa", "app-01/app-01-sa")


@pytest.mark.parametrize("stack", ANY_STACK)
def test_every_stack_graph_is_plausible(any_declared: dict[str, Declaration], stack: str) -> None:
    matrix = access_of(any_declared[stack])
    graph = stack_graph(matrix)
    plausible(graph)
    # One node per identity, one per target any of them reaches.
    identities = {entry.subject for entry in matrix.identities}
    reached = {f"{r.target.kind} {r.target.mount}/{r.target.name}"
               for entry in (*matrix.identities, *matrix.platform) for r in entry.reaches}
    assert node_labels(graph, "i") == sorted(identities)
    assert node_labels(graph, "t") == sorted(reached)


def test_the_onboarding_diff_graph_is_plausible(declared: dict[str, Declaration]) -> None:
    head = plan_document(declare_config(any_stack("staging+onboarded", root=TEST_STACKS)))
    graph = changed(plan_document(declared["staging"]), head)
    assert "orders/orders-api" in graph.shown


class TestCommand:
    def test_mermaid_is_the_stack_graph(self, any_declared: dict[str, Declaration],
                                        capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["access", "prod", "--format", "mermaid"]) == 0
        matrix = access_of(any_declared["prod"])
        assert capsys.readouterr().out == stack_graph(matrix)

    def test_the_other_formats_are_unchanged(self, capsys: pytest.CaptureFixture[str]) -> None:
        outputs = []
        for arguments in (["--json"], ["--format", "json"], [], ["--format", "text"]):
            assert main(["access", "prod", *arguments]) == 0
            outputs.append(capsys.readouterr().out)
        assert outputs[0] == outputs[1]
        assert outputs[0].startswith("{\n")
        assert outputs[2] == outputs[3]
        assert outputs[2].startswith("Access of stack 'prod': ")

    def test_one_format_at_a_time(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as exit_code:
            main(["access", "prod", "--json", "--format", "mermaid"])
        assert exit_code.value.code == 2
        assert "argument --format: not allowed with argument --json" in capsys.readouterr().err
