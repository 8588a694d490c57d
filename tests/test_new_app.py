"""``platformctl new-app <team>/<name>``: the file it writes is one the next ``bin/plan`` accepts, in
every stack it names; what it cannot write is refused with the reason, and nothing is written."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from platformctl.commands.new_app_command import new_app
from tests.support import TEST_STACKS, repository_copy


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository with the test stacks and applications in place of the committed ones."""
    repo = repository_copy(tmp_path_factory.mktemp("new-app") / "repo")
    for directory in ("stacks", "apps"):
        shutil.rmtree(repo / directory)
        shutil.copytree(TEST_STACKS / directory, repo / directory)
    return repo


def platformctl(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "platformctl", *args], cwd=repo, capture_output=True, text=True,
                          check=False)


def test_the_file_it_writes_plans_in_every_stack_it_names(repo: Path) -> None:
    written = platformctl(repo, "new-app", "orders/orders-api")
    assert (written.returncode, written.stderr) == (0, "")
    assert written.stdout.splitlines() == [
        "wrote apps/orders/orders-api.yaml (stacks: access, dev, external, prod, staging)",
        'next: give it its access in apps/orders/orders-api.yaml (README, "Applications"), then bin/plan <stack> '
        "--app orders-api",
        "note: apps/orders/ is owned by @vault-platform/platform-team: add the line '/apps/orders/ "
        "@vault-platform/orders @vault-platform/platform-team' to .github/CODEOWNERS (the platform team's change)"]
    assert (repo / "apps" / "orders" / "orders-api.yaml").read_text() == (
        "# yaml-language-server: $schema=../../schema/app.schema.json\n"
        "# Application 'orders-api' of the team 'orders' (.github/CODEOWNERS: /apps/orders/): the keys\n"
        "# every stack reads, then each stack it runs in with what differs there (README, \"Applications\").\n"
        "namespace: orders\n"
        "serviceAccount: orders-api\n"
        "environments:\n"
        "  access:\n"
        "  dev:\n"
        "  external:\n"
        "  prod:\n"
        "  staging:\n")
    for stack in ("access", "dev", "external", "staging", "prod"):
        plan = platformctl(repo, "plan", stack)
        assert (plan.returncode, plan.stderr) == (0, ""), stack
    view = platformctl(repo, "plan", "prod", "--app", "orders-api")
    assert "  Kubernetes service account orders/orders-api\n" in view.stdout


def test_its_options_name_the_identity_and_the_stacks(repo: Path) -> None:
    written = platformctl(repo, "new-app", "orders/orders-worker", "--namespace", "orders-jobs",
                          "--service-account", "worker.v2", "--environments", "dev,staging")
    assert written.returncode == 0, written.stderr
    text = (repo / "apps" / "orders" / "orders-worker.yaml").read_text()
    assert text.splitlines()[3:] == ["namespace: orders-jobs", "serviceAccount: worker.v2", "environments:", "  dev:",
                                     "  staging:"]
    assert platformctl(repo, "plan", "staging", "--app", "orders-worker").returncode == 0


def test_what_a_stack_refuses_is_not_written(repo: Path) -> None:
    refused = platformctl(repo, "new-app", "billing/invoices", "--service-account", "default",
                          "--environments", "dev")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: not written, stack 'dev' refuses it: stack 'dev', "
                                     "apps/billing/invoices.yaml, line 5, key 'serviceAccount': binds the namespace's "
                                     "'default' service account")
    assert not (repo / "apps" / "billing").exists()


@pytest.mark.parametrize(("app", "options", "error"), [
    ("orders", {}, "'orders' is not <team>/<name>: write the team's folder and the application's name, e.g. "
                   "orders/orders-api"),
    ("orders/a/b", {}, "'orders/a/b' is not <team>/<name>"),
    ("Orders/orders-api", {}, "team 'Orders' is not a valid name"),
    ("orders/orders_api", {}, "name 'orders_api' is not a valid name"),
    ("orders/orders-api", {"namespace": "Orders"}, "--namespace 'Orders' is not a valid name"),
    ("orders/orders-api", {"environments": "dev,prd"},
     "--environments: 'prd' is not a stack of this project (stacks: access, dev, external, prod, staging)"),
    ("payments/api-service", {}, "apps/payments/api-service.yaml exists already: edit it instead"),
    ("orders/api-service", {}, "application 'api-service' is apps/payments/api-service.yaml already (a name is "
                               "unique across teams: it is a Vault role): choose another name"),
])
def test_refused_with_the_reason(app: str, options: dict[str, str], error: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(error)}"):
        new_app(app, options.get("namespace"), options.get("service_account"), options.get("environments"),
                TEST_STACKS)
