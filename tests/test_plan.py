"""The offline plan: what a platform engineer sees with no cluster and no Pulumi CLI."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime.proto import source_pb2

from platformctl.__main__ import main
from platformctl.adapters.engine import declare_with
from platformctl.adapters.stackfile import stacks
from platformctl.core.plan import fingerprint, plan_text
from tests.support import COMMITTED, declare_stack, edited


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class TestPlanText:
    def test_prod_plan_shows_the_settings_that_matter(self) -> None:
        out = plan_text(declare_stack("prod"), edited("prod"))
        assert out.startswith("Plan of stack 'prod' (project vault-platform)\n")
        assert "nothing was deployed" in out
        assert "+ kubernetes:helm.sh/v3:Release  vault-cluster-release  [protected]" in out
        assert "        values.server.ha.replicas: 5" in out
        assert "+ vault:database/secretBackendRole:SecretBackendRole  vault-database-api-role" in out
        assert "        defaultTtl: 3600" in out
        assert "\n      token: [secret]\n" in out
        assert ("Placeholders (not decrypted or not set on this machine): vault:token, "
                "vault-platform:apiServiceApiKey") in out
        assert "placeholder-not-decrypted" not in out

    @pytest.mark.parametrize("stack", COMMITTED)
    def test_the_command_plans_each_committed_stack_and_lists_what_it_needs_outside(
            self, capsys: pytest.CaptureFixture[str], stack: str) -> None:
        code, out, err = run(capsys, "plan", stack)
        assert (code, err) == (0, "")
        assert out.startswith(f"Plan of stack {stack!r} (project vault-platform)\n")
        assert "placeholder-not-decrypted" not in out
        assert out.split("\n\n")[-1].startswith("Needs outside the repository")

    def test_dev_plan_masks_generated_secrets(self) -> None:
        out = plan_text(declare_stack("dev"), edited("dev"))
        assert "        dataJson: [secret]" in out
        assert "generated-at-deploy" not in out

    def test_cluster_only_says_what_to_do_next(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run(capsys, "plan", "staging", "--cluster-only")
        assert code == 0
        assert "vault:index/mount:Mount" not in out
        assert "warning: Vault is not configured yet" in out

    def test_unknown_stack(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, _, err = run(capsys, "plan", "qa")
        assert code == 2
        assert err == f"error: no stack 'qa': stacks/Pulumi.qa.yaml does not exist (stacks: {', '.join(stacks())})\n"


class TestPlanJson:
    def test_json_is_masked_and_keyed_by_resource(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run(capsys, "plan", "prod", "--json")
        assert code == 0
        document = json.loads(out)
        assert document["stack"] == "prod"
        assert document["error"] is None
        release = document["resources"]["vault-cluster-release"]
        assert (release["type"], release["protect"], release["parent"]) == (
            "kubernetes:helm.sh/v3:Release", True, "vault-cluster")
        secrets = [r for r in document["resources"].values() if r["type"] == "vault:kv/secretV2:SecretV2"]
        assert {r["inputs"]["dataJson"] for r in secrets} <= {"[secret]"}


def test_the_text_plan_does_not_depend_on_registration_order() -> None:
    """The engine registers resources as their inputs resolve, in an order that changes between runs."""
    declaration = declare_stack("prod")
    shuffled = replace(declaration, resources=tuple(reversed(declaration.resources)))
    assert plan_text(shuffled, edited("prod")) == plan_text(declaration, edited("prod"))


def test_a_plan_skips_the_sdks_source_positions_and_gives_the_stack_walk_back() -> None:
    """The SDK walks the Python stack for each resource it registers (``_get_stack_trace`` in
    ``pulumi/runtime/resource.py``); a plan records no position, so it stands in the empty trace the
    SDK sends when it finds no user frame, only while the program runs."""
    walk = sdk_resource._get_stack_trace
    seen: list[source_pb2.StackTrace] = []
    declaration = declare_with(lambda: seen.append(sdk_resource._get_stack_trace()), "dev", {})
    assert (declaration.error, seen) == (None, [source_pb2.StackTrace()])
    assert sdk_resource._get_stack_trace is walk


class TestFingerprint:
    def test_the_same_whatever_the_order_of_registration_and_warnings(self) -> None:
        declaration = declare_stack("prod")
        shuffled = replace(declaration, resources=tuple(reversed(declaration.resources)),
                           warnings=("second", "first"))
        assert fingerprint(shuffled) == fingerprint(replace(declaration, warnings=("first", "second")))

    def test_another_for_any_change_of_what_is_declared(self) -> None:
        declaration = declare_stack("prod")
        first = declaration.resources[0]
        changed = replace(first, inputs={**first.inputs, "extra": 1})
        assert fingerprint(replace(declaration, resources=(changed, *declaration.resources[1:]))) != fingerprint(
            declaration)
        assert fingerprint(replace(declaration, outputs={})) != fingerprint(declaration)
        assert fingerprint(replace(declaration, error="refused")) != fingerprint(declaration)

    def test_the_json_plan_carries_each_stacks(self, capsys: pytest.CaptureFixture[str]) -> None:
        fingerprints = []
        for _ in range(2):
            code, out, _ = run(capsys, "plan", "dev", "--json")
            assert code == 0
            fingerprints.append(json.loads(out)["stacks"])
        assert list(fingerprints[0]) == ["dev"]
        assert re.fullmatch("[0-9a-f]{64}", fingerprints[0]["dev"])
        assert fingerprints[1] == fingerprints[0]
