"""The offline plan: what a platform engineer sees with no cluster and no Pulumi CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from platformctl.__main__ import main
from platformctl.plan import plan_text
from platformctl.stackfile import read_stack
from tests.support import declare_stack


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class TestPlanText:
    def test_prod_plan_shows_the_settings_that_matter(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run(capsys, "plan", "prod")
        assert code == 0
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

    def test_dev_plan_masks_generated_secrets(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run(capsys, "plan", "dev")
        assert code == 0
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
        assert err == "error: no stack 'qa': stacks/Pulumi.qa.yaml does not exist (stacks: dev, prod, staging)\n"


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
        assert document["resources"]["vault-kv-api-service"]["inputs"]["dataJson"] == "[secret]"


def test_the_text_plan_does_not_depend_on_registration_order() -> None:
    """The engine registers resources as their inputs resolve, in an order that changes between runs."""
    declaration = declare_stack("prod")
    shuffled = replace(declaration, resources=tuple(reversed(declaration.resources)))
    assert plan_text(shuffled, read_stack("prod")) == plan_text(declaration, read_stack("prod"))
