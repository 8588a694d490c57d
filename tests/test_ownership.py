"""Who owns what: ``.github/CODEOWNERS`` gives each team's application folder to that team and the
platform team, and the rest of the repository to the platform team; the pull request comment shows,
per application file that changes, what changes and who approves it (by the base's CODEOWNERS)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from environment.apps import read_apps
from platformctl.adapters.engine import ROOT
from platformctl.core.codeowners import (
    CODEOWNERS,
    PLATFORM_TEAM,
    CodeownersError,
    owners_of,
    parse,
    unowned_team_folders,
)
from platformctl.core.diff import app_changes, render_app_changes
from tests.support import API_SERVICE, DELETE, TEST_STACKS, repository_copy, with_files

PAYMENTS = "@vault-platform/payments"
RULES = parse(f"* {PLATFORM_TEAM}\n/apps/payments/ {PAYMENTS} {PLATFORM_TEAM}  # payments' applications\n")


class TestCodeowners:
    def test_every_team_folder_has_its_owner_line(self) -> None:
        teams = {file.team for file in read_apps(ROOT).files}
        assert teams
        assert unowned_team_folders(parse((ROOT / CODEOWNERS).read_text()), teams) == []

    def test_a_team_folder_without_its_line_is_reported_with_the_line_to_add(self) -> None:
        assert unowned_team_folders(parse(f"* {PLATFORM_TEAM}\n"), ["orders"]) == [
            "apps/orders/ is owned by @vault-platform/platform-team: add the line '/apps/orders/ "
            "@vault-platform/orders @vault-platform/platform-team' to .github/CODEOWNERS"]
        assert unowned_team_folders(parse(f"* {PLATFORM_TEAM}\n/apps/orders/ @vault-platform/orders\n"),
                                    ["orders"]) == [
            "apps/orders/ is owned by @vault-platform/orders: add the line '/apps/orders/ @vault-platform/orders "
            "@vault-platform/platform-team' to .github/CODEOWNERS"]

    def test_everything_outside_the_team_folders_is_the_platform_teams(self) -> None:
        tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split()
        rules = parse((ROOT / CODEOWNERS).read_text())
        outside = [path for path in tracked if not path.startswith("apps/")]
        assert {path: owners_of(rules, path) for path in outside} == dict.fromkeys(outside, (PLATFORM_TEAM,))

    @pytest.mark.parametrize(("path", "owners"), [
        ("apps/payments/api-service.yaml", (PAYMENTS, PLATFORM_TEAM)),
        ("apps/payments/deeper/file.yaml", (PAYMENTS, PLATFORM_TEAM)),
        ("apps/paymentsx/api.yaml", (PLATFORM_TEAM,)),
        ("tests/apps/payments/api-service.yaml", (PLATFORM_TEAM,)),
        ("README.md", (PLATFORM_TEAM,)),
    ])
    def test_the_last_matching_line_wins(self, path: str, owners: tuple[str, ...]) -> None:
        assert owners_of(RULES, path) == owners

    @pytest.mark.parametrize(("pattern", "path", "matches"), [
        ("docs/*", "docs/a.md", True),
        ("docs/*", "docs/build/a.md", False),  # GitHub's own example: one level only
        ("apps/", "tests/apps/x.yaml", True),  # unanchored: at any depth
        ("/apps/", "tests/apps/x.yaml", False),
        ("*.md", "docs/a.md", True),
        ("/docs/**/a.md", "docs/x/y/a.md", True),
    ])
    def test_patterns_as_github_reads_them(self, pattern: str, path: str, matches: bool) -> None:
        assert bool(owners_of(parse(f"{pattern} @o/t\n"), path)) is matches

    @pytest.mark.parametrize("pattern", ["!apps/", "apps/[ab]/"])
    def test_syntax_github_does_not_support_is_refused(self, pattern: str) -> None:
        with pytest.raises(CodeownersError, match="line 2"):
            parse(f"* {PLATFORM_TEAM}\n{pattern} @o/t\n")


ORDERS = {"namespace": "orders", "serviceAccount": "orders-api", "environments": {"staging": None}}


class TestApplicationsInTheComment:
    def test_each_changed_file_with_its_keys_stacks_and_approvers(self) -> None:
        base = read_apps(TEST_STACKS)
        head = with_files(base, {f"{API_SERVICE}tokenTtl": "30m", "apps/orders/orders-api.yaml:": ORDERS,
                                 "apps/payments/payments.yaml:": DELETE})
        markdown = render_app_changes(app_changes(base, head), RULES, "origin/main")
        assert markdown.splitlines() == [
            "### Applications",
            "",
            "Who approves: one owner of each file, by `.github/CODEOWNERS` as `origin/main` has it (GitHub reads it "
            "from the base branch).",
            "",
            "- `apps/orders/orders-api.yaml` **added** (stacks `staging`); approval: `@vault-platform/platform-team`",
            "",
            "  | setting | value |",
            "  | --- | --- |",
            "  | `environments.staging` | `null` |",
            "  | `namespace` | `orders` |",
            "  | `serviceAccount` | `orders-api` |",
            "",
            "- `apps/payments/api-service.yaml` **changed** (stacks `access`, `dev`, `external`, `prod`, `staging`); "
            "approval: `@vault-platform/payments` or `@vault-platform/platform-team`",
            "",
            "  | setting | base | branch |",
            "  | --- | --- | --- |",
            "  | `tokenTtl` | `1h` | `30m` |",
            "",
            "- `apps/payments/payments.yaml` **removed** (stacks `access`); approval: `@vault-platform/payments` or "
            "`@vault-platform/platform-team`",
        ]

    def test_no_change_is_one_line(self) -> None:
        apps = read_apps(TEST_STACKS)
        assert render_app_changes(app_changes(apps, apps), RULES, "main") == (
            "### Applications\n\nNo application file changes.\n")

    def test_a_pull_request_cannot_choose_its_own_approvers(self, tmp_path: Path) -> None:
        repo = repository_copy(tmp_path / "repo")
        (repo / "apps" / "orders").mkdir()
        (repo / "apps" / "orders" / "orders-api.yaml").write_text(yaml.safe_dump(ORDERS))
        codeowners = repo / CODEOWNERS
        codeowners.write_text(codeowners.read_text() + "/apps/orders/ @vault-platform/orders\n")
        diff = subprocess.run([sys.executable, "-m", "platformctl", "diff", "staging", "--base", "HEAD"], cwd=repo,
                              capture_output=True, text=True, check=False)
        assert (diff.returncode, diff.stderr) == (0, "")
        assert ("- `apps/orders/orders-api.yaml` **added** (stacks `staging`); approval: "
                "`@vault-platform/platform-team`\n") in diff.stdout
        assert diff.stdout.index("### Outside the repository") < diff.stdout.index("### Applications") < (
            diff.stdout.index("### Access changes"))
