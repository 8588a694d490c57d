"""Applications in files of their own (``apps/<team>/<app>.yaml``), not in the stack config: the
layout, what a file may say and where a problem is (file, line, key), what each stack reads of it,
what a team's file may declare and reach, one loader for the program and the tools, and a stack
config that no longer grows with the applications."""

from __future__ import annotations

import contextvars
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.runtime import config as runtime_config
from pulumi.runtime import settings

from environment import SpecError, StackRefused
from environment.apps import PROJECT_ROOT, ROOT_VARIABLE, project_root, read_apps
from environment.runtime import load_stack_spec
from platformctl.adapters.engine import ROOT
from platformctl.adapters.stackfile import read_stack
from policies.guardrails.checks import stated_removals
from tests.support import (
    API_SERVICE,
    DELETE,
    ORDERS,
    ORDERS_FILE,
    TEST_STACKS,
    apply_edits,
    edited,
    refusal,
    spec_of,
    spec_of_config,
)

P = "vault-platform:"
PROD = f"{API_SERVICE}environments.prod."
API_FILE = API_SERVICE.rstrip(":")
# Linux's cap on one string of a process's environment (MAX_ARG_STRLEN, 32 pages of 4 KiB): the whole
# stack config travels in one (PULUMI_CONFIG).
MAX_ARG_STRLEN = 128 * 1024


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    """A project root with the test stacks and ``files`` (path -> text) written under it."""
    shutil.copytree(TEST_STACKS / "stacks", tmp_path / "stacks")
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


def problems_of(root: Path, stack: str = "prod") -> list[SpecError]:
    with pytest.raises(StackRefused) as refused:
        spec_of_config(read_stack(stack, root))
    return list(refused.value.problems)


def pulumi_config(config: dict[str, Any]) -> str:
    """``PULUMI_CONFIG`` as the CLI sets it: one JSON object, structured values as JSON text."""
    return json.dumps({key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()})


class TestLayout:
    @pytest.mark.parametrize(("path", "problem", "fix"), [
        ("apps/orders-api.yaml", "is not in a team's folder",
         "move it to apps/<team>/orders-api.yaml, in the folder of the team that owns it"),
        ("apps/orders/api/orders-api.yaml", "is nested below a team's folder (apps/<team>/<app>.yaml)",
         "move it to apps/orders/orders-api.yaml"),
        ("apps/orders/orders-api.yml", "is not a .yaml file: only application files live under apps/",
         "rename it to apps/orders/orders-api.yaml, or move it out of apps/"),
        ("apps/orders/README", "is not a .yaml file: only application files live under apps/",
         "rename it to apps/orders/README.yaml, or move it out of apps/"),
        ("apps/Orders/orders-api.yaml", "'Orders' is not a valid team folder",
         "rename it: use lowercase letters, digits and '-', starting and ending with a letter or digit (a "
         "DNS-1123 label), at most 63 characters"),
        ("apps/orders/orders_api.yaml", "'orders_api' is not a valid application name",
         "rename it: use lowercase letters, digits and '-', starting and ending with a letter or digit (a "
         "DNS-1123 label), at most 63 characters"),
    ])
    def test_a_file_outside_the_layout_is_refused_with_where_it_belongs(self, tmp_path: Path, path: str,
                                                                          problem: str, fix: str) -> None:
        root = project(tmp_path, {path: yaml.safe_dump(ORDERS_FILE)})
        (refused,) = problems_of(root)
        assert (refused.key, refused.line, refused.problem, refused.fix) == (f"{path}:", None, problem, fix)
        assert str(refused) == f"stack 'prod', {path}: {problem}. Fix: {fix}"

    def test_every_stack_refuses_a_misplaced_file(self, tmp_path: Path) -> None:
        root = project(tmp_path, {"apps/orders-api.yaml": yaml.safe_dump(ORDERS_FILE)})
        for stack in ("dev", "staging", "prod", "access"):
            assert [problem.key for problem in problems_of(root, stack)] == ["apps/orders-api.yaml:"]

    def test_the_name_is_the_files_and_the_team_its_folder(self, tmp_path: Path) -> None:
        root = project(tmp_path, {"apps/orders/orders-api.yaml": yaml.safe_dump(ORDERS_FILE)})
        (file,) = read_apps(root).files
        assert (file.path, file.team, file.name) == ("apps/orders/orders-api.yaml", "orders", "orders-api")
        assert [app.name for app in spec_of_config(read_stack("prod", root)).apps] == ["orders-api"]

    def test_no_apps_folder_is_a_project_without_applications(self, tmp_path: Path) -> None:
        assert spec_of_config(read_stack("prod", project(tmp_path, {}))).apps == ()


class TestFiles:
    def test_a_yaml_slip_names_the_file_the_line_and_the_column(self, tmp_path: Path) -> None:
        root = project(tmp_path, {"apps/orders/orders-api.yaml": "namespace: orders\nserviceAccount: a: b\n"})
        (problem,) = problems_of(root)
        assert str(problem) == (
            "stack 'prod', apps/orders/orders-api.yaml, line 2: is not valid YAML (column 18): mapping values are "
            "not allowed in this context. Fix: check the indentation and quoting there (a value with ': ' or a "
            "leading '*', '&', '{' needs quotes)")

    def test_a_file_that_is_not_a_mapping_is_refused(self, tmp_path: Path) -> None:
        (problem,) = problems_of(project(tmp_path, {"apps/orders/orders-api.yaml": "- namespace: orders\n"}))
        assert (problem.key, problem.problem) == ("apps/orders/orders-api.yaml:", "is not a mapping of keys to values")

    @pytest.mark.parametrize(("environments", "problem"), [
        (None, "names no stack: the application exists in none"),
        ({}, "names no stack: the application exists in none"),
        (["prod"], "is not a mapping of stacks"),
    ])
    def test_a_file_names_the_stacks_it_runs_in(self, environments: Any, problem: str) -> None:
        refused = refusal("prod", {f"{ORDERS}": {**ORDERS_FILE, "environments": environments}},
                          f"{ORDERS}environments")
        assert refused.problem == problem
        assert refused.fix == ("name each stack it runs in, with the keys that differ there, e.g. 'environments: "
                               "{dev: {namespace: ...}}' (stacks: access, dev, external, prod, staging)")

    @pytest.mark.parametrize(("stack", "fix"), [
        ("prd", "use 'prod'"),
        ("production-eu",
         "name one of access, dev, external, prod, staging (a stack needs its file, stacks/Pulumi.<stack>.yaml)"),
    ])
    def test_an_unknown_environment_is_refused_in_every_stack(self, stack: str, fix: str) -> None:
        changes = {f"{ORDERS}": {**ORDERS_FILE, "environments": {"prod": None, stack: {"namespace": "x"}}}}
        for tier in ("dev", "prod"):
            refused = refusal(tier, changes, f"{ORDERS}environments.{stack}")
            assert (refused.problem, refused.fix) == (f"{stack!r} is not a stack of this project", fix)

    def test_a_stacks_keys_are_a_mapping(self) -> None:
        refused = refusal("prod", {f"{ORDERS}": {**ORDERS_FILE, "environments": {"prod": "orders"}}},
                          f"{ORDERS}environments.prod")
        assert refused.problem == "is not a mapping of the keys that differ there"

    def test_a_name_used_by_two_teams_is_refused(self) -> None:
        refused = refusal("dev", {"apps/orders/api-service.yaml:": ORDERS_FILE}, f"{API_SERVICE}")
        assert refused.problem == ("application 'api-service' is also apps/orders/api-service.yaml (each "
                                   "application is a Vault role: its name is unique across teams)")
        assert refused.fix == "rename one of the two files"

    def test_the_name_is_not_a_key(self) -> None:
        refused = refusal("prod", {f"{API_SERVICE}name": "api"}, f"{API_SERVICE}name")
        assert (refused.problem, refused.fix) == ("is not read: an application is named by its file ('api-service')",
                                                  "remove it; to rename the application, rename its file")


class TestWhereAProblemIs:
    def test_a_problem_names_the_file_the_line_and_the_key_where_it_is_written(self, tmp_path: Path) -> None:
        text = (TEST_STACKS / API_FILE).read_text().replace("    namespace: production\n    kvPaths: [production/",
                                                            "    namespace: production\n    tokenTtl: 8h\n"
                                                            "    kvPaths: [production/", 1)
        root = project(tmp_path, {API_FILE: text})
        (problem,) = problems_of(root)
        assert str(problem) == ("stack 'prod', apps/payments/api-service.yaml, line 17, key "
                                "'environments.prod.tokenTtl': 8h is above tokenMaxTtl (4h). Fix: use at most 4h (the "
                                "tokenMaxTtl), or raise tokenMaxTtl")
        # The other stacks read the common tokenTtl.
        assert spec_of_config(read_stack("staging", root)).apps[0].token_ttl == 3600

    def test_an_unknown_key_under_a_stack(self) -> None:
        refused = refusal("prod", {f"{PROD}tokenTTL": "1h"}, f"{PROD}tokenTTL")
        assert (refused.problem, refused.fix) == ("is not a known key (did you mean 'tokenTtl'?)",
                                                  "remove it: 'tokenTtl' is set already")
        assert refused.unknown_key

    def test_a_missing_required_key_is_on_the_files_first_line(self, tmp_path: Path) -> None:
        text = (TEST_STACKS / API_FILE).read_text().replace("serviceAccount: api-service-sa\n", "")
        (problem,) = problems_of(project(tmp_path, {API_FILE: text}))
        assert (problem.key, problem.line, problem.problem) == (
            f"{API_SERVICE}serviceAccount", None, "is required but not set")

    def test_a_problem_in_a_list_item_is_on_its_line(self, tmp_path: Path) -> None:
        text = yaml.safe_dump({**ORDERS_FILE, "transitKeys": [{"key": "payments-card-data",
                                                               "operations": ["encrypt", "export"]}]},
                              sort_keys=False)
        line = text.splitlines().index("  - export") + 1
        (problem,) = problems_of(project(tmp_path, {"apps/orders/orders-api.yaml": text}))
        assert (problem.key, problem.line) == (
            "apps/orders/orders-api.yaml:transitKeys[payments-card-data].operations[1]", line)


class TestEachStacksKeys:
    def test_a_key_under_a_stack_replaces_the_common_one(self) -> None:
        spec = spec_of("prod", {f"{API_SERVICE}tokenTtl": "30m", f"{PROD}tokenTtl": "2h"})
        assert spec.apps[0].token_ttl == 7200
        assert spec_of("dev", {f"{API_SERVICE}tokenTtl": "30m", f"{PROD}tokenTtl": "2h"}).apps[0].token_ttl == 1800

    def test_an_application_exists_only_in_the_stacks_it_names(self) -> None:
        assert [app.name for app in spec_of("access").apps] == ["api-service", "payments"]
        assert [app.name for app in spec_of("prod").apps] == ["api-service"]
        assert spec_of("prod", {f"{PROD.rstrip('.')}": DELETE}).apps == ()

    def test_a_stack_named_alone_takes_the_common_keys(self) -> None:
        spec = spec_of("prod", {ORDERS: ORDERS_FILE})
        (orders,) = [app for app in spec.apps if app.name == "orders-api"]
        assert (orders.namespace, orders.service_account, orders.kv_paths) == (
            "orders", "orders-api", ("production/orders-api",))


class TestWhatATeamDeclares:
    def test_its_secret_and_database_role_join_the_stacks(self) -> None:
        spec = spec_of("prod", {ORDERS: ORDERS_FILE})
        assert [secret.path for secret in spec.kv.secrets] == ["production/api-service", "production/orders-api"]
        assert spec.database is not None
        assert [role.name for role in spec.database.roles] == ["api-role", "orders-api-reader"]
        assert [grant.schema for grant in spec.database.role["orders-api-reader"].grants] == ["orders_api"]

    @pytest.mark.parametrize(("change", "key"), [
        ({"secrets": {"shared": {"data": {"token": {"random": {"length": 32}}}}}}, f"{ORDERS}secrets.shared"),
        ({"databaseRoles": [{"name": "reader", "connection": "postgres", "grants": [{"privileges": ["SELECT"]}]}]},
         f"{ORDERS}databaseRoles[0].name"),
    ])
    def test_what_it_declares_carries_its_name(self, change: dict[str, Any], key: str) -> None:
        refused = refusal("prod", {ORDERS: {**ORDERS_FILE, **change, "kvPaths": [], "databaseRole": None}}, key)
        assert refused.fix == ("name it 'orders-api' or orders-api-<purpose>: what an application's file declares "
                               "carries its name")

    def test_a_malformed_file_does_not_hide_the_others_problems(self) -> None:
        changes = {ORDERS: {**ORDERS_FILE, "secrets": "token", "databaseRoles": {"name": "x"}},
                   f"{API_SERVICE}tokenTtl": "8h"}
        with pytest.raises(StackRefused) as refused:
            spec_of("prod", changes)
        assert [(problem.key, problem.problem) for problem in refused.value.problems] == [
            (f"{ORDERS}secrets", "expected an object, got a string ('token')"),
            (f"{ORDERS}databaseRoles", "expected a list, got an object"),
            (f"{API_SERVICE}tokenTtl", "8h is above tokenMaxTtl (4h)")]

    def test_a_name_the_stack_declares_already_is_refused(self) -> None:
        secret = {"api-service": {"data": {"token": {"random": {"length": 32}}}}}
        refused = refusal("prod", {f"{API_SERVICE}secrets": secret}, f"{API_SERVICE}secrets.api-service")
        assert refused.problem == ("KV secret 'api-service' is declared at vault-platform:kv.secrets.api-service "
                                   "already")

    def test_a_database_role_needs_the_stacks_database(self) -> None:
        refused = refusal("prod", {ORDERS: ORDERS_FILE, f"{P}database": DELETE, f"{API_SERVICE}databaseRole": None},
                          f"{ORDERS}databaseRoles")
        assert refused.problem == "stack 'prod' declares no database connection"

    def test_its_problems_are_named_in_its_file(self) -> None:
        refused = refusal("prod", {ORDERS: ORDERS_FILE, f"{ORDERS}databaseRoles[0].maxTtl": "8h"},
                          f"{ORDERS}databaseRoles[0].maxTtl")
        assert refused.problem.startswith("8h outlives the tokens of application 'orders-api' (tokenMaxTtl 4h)")
        assert refused.edits == ((f"{ORDERS}databaseRoles[orders-api-reader].maxTtl", "4h"),)
        assert spec_of_config(apply_edits("prod", {ORDERS: ORDERS_FILE, f"{ORDERS}databaseRoles[0].maxTtl": "8h"},
                                          refused.edits)).database is not None

    def test_a_stack_secret_it_references_gets_a_placeholder_in_the_stacks_it_runs_in(self, tmp_path: Path) -> None:
        document = {**ORDERS_FILE, "secrets": {"orders-api": {"data": {"token": {"fromSecret": "ordersApiToken"}}}}}
        root = project(tmp_path, {"apps/orders/orders-api.yaml": yaml.safe_dump(document)})
        assert f"{P}ordersApiToken" in read_stack("prod", root).placeholders
        assert f"{P}ordersApiToken" not in read_stack("staging", root).placeholders
        (secret,) = [s for s in spec_of_config(read_stack("prod", root)).kv.secrets if s.name == "orders-api"]
        assert secret.values[0][1].config_key == "ordersApiToken"


class TestWhatATeamReaches:
    @pytest.mark.parametrize(("change", "key", "item"), [
        ({f"{PROD}kvPaths": ["production/orders-api"]}, f"{PROD}kvPaths[0]", "'production/orders-api'"),
        ({f"{API_SERVICE}databaseRole": "orders-api-reader"}, f"{API_SERVICE}databaseRole", "'orders-api-reader'"),
    ])
    def test_another_teams_secret_or_role_is_refused(self, change: dict[str, Any], key: str, item: str) -> None:
        refused = refusal("prod", {ORDERS: ORDERS_FILE, **change}, key)
        assert refused.problem == (f"{item} is declared by team 'orders' (apps/orders/orders-api.yaml): an "
                                   "application reaches only what the stack file or its own team's files declare")
        assert refused.fix == ("declare one of its own in apps/payments/api-service.yaml, or ask the platform team "
                               "to declare a shared one in the stack file")

    def test_its_own_teams_and_the_platforms_are_reached(self) -> None:
        worker = {**ORDERS_FILE, "serviceAccount": "orders-worker", "secrets": {}, "databaseRoles": []}
        spec = spec_of("prod", {ORDERS: ORDERS_FILE, "apps/orders/orders-worker.yaml:": worker})
        (app,) = [app for app in spec.apps if app.name == "orders-worker"]
        assert (app.kv_paths, app.database_role) == (("production/orders-api",), "orders-api-reader")
        assert spec_of("prod", {ORDERS: {**ORDERS_FILE, "databaseRole": "api-role"}}).apps[1].database_role == (
            "api-role")


class TestNotInTheStackConfig:
    ENTRY = {"name": "api-service", "namespace": "production", "serviceAccount": "api-service-sa",
             "tokenTtl": "1h", "kvPaths": ["production/api-service"], "databaseRole": "api-role",
             "policies": ["api-secrets"]}

    def test_apps_in_the_stack_config_are_refused_with_where_they_go(self) -> None:
        refused = refusal("prod", {f"{P}apps": [self.ENTRY], f"{API_SERVICE}": DELETE}, f"{P}apps")
        assert refused.problem == ("applications are no longer read from the stack config: the Pulumi CLI hands the "
                                   "whole config to the program in one environment variable, which Linux caps at "
                                   "128 KiB (about 200 applications)")
        assert refused.fix.startswith("move each entry to apps/<team>/<name>.yaml (the team that owns it: its "
                                      "folder; the name: the file's), its keys for this stack under 'environments: "
                                      "{<stack>: ...}', then remove this key")

    def test_the_fix_is_accepted_and_gives_the_same_application(self) -> None:
        before = spec_of("prod").apps
        entry = {key: value for key, value in self.ENTRY.items() if key != "name"}
        moved = spec_of("prod", {f"{API_SERVICE}": {"environments": {"prod": entry}}})
        assert moved.apps == before


class TestOneLoader:
    def test_the_project_root_is_found_from_the_package_whatever_the_directory(self, tmp_path: Path) -> None:
        script = "from environment.apps import project_root; print(project_root())"
        found = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True).stdout.strip()
        assert Path(found) == ROOT == PROJECT_ROOT

    def test_the_root_can_be_overridden(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(ROOT_VARIABLE, str(TEST_STACKS))
        assert project_root() == TEST_STACKS
        assert [file.path for file in read_apps().files] == ["apps/payments/api-service.yaml",
                                                             "apps/payments/payments.yaml"]

    def test_under_the_cli_the_program_reads_the_files_itself(self, monkeypatch: pytest.MonkeyPatch) -> None:
        config = edited("access")
        monkeypatch.setenv("PULUMI_CONFIG", pulumi_config(dict(config.config)))
        monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(sorted(config.secret_keys)))
        monkeypatch.setenv(ROOT_VARIABLE, str(TEST_STACKS))

        def run() -> list[str]:
            settings._set_stack("access")
            runtime_config.CONFIG.set({})
            return [app.name for app in load_stack_spec().apps]

        assert contextvars.Context().run(run) == ["api-service", "payments"]

    def test_the_guardrails_pack_reads_the_stack_beside_broken_application_files(self, tmp_path: Path) -> None:
        root = project(tmp_path, {"apps/orders/orders-api.yaml": "namespace: [\n"})
        stack = root / "stacks" / "Pulumi.prod.yaml"
        stack.write_text(stack.read_text() + "  vault-platform:removals: [sys/mounts/transit]\n")
        assert stated_removals("prod", root) == ("sys/mounts/transit",)


def thousand_apps(root: Path, count: int) -> None:
    """``count`` applications in prod, each with its own secret and database role, in 50 teams."""
    for number in range(count):
        name = f"app-{number}"
        document = {"namespace": f"team-{number % 50}", "serviceAccount": name, "kvPaths": [f"production/{name}"],
                    "databaseRole": f"{name}-reader",
                    "secrets": {name: {"data": {"token": {"random": {"length": 32}}}}},
                    "databaseRoles": [{"name": f"{name}-reader", "connection": "postgres",
                                       "grants": [{"privileges": ["SELECT"], "schema": "public"}]}],
                    "environments": {"prod": None}}
        path = root / "apps" / f"team-{number % 50}" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document))


class TestScale:
    def test_the_stack_config_does_not_grow_with_the_applications(self, tmp_path: Path) -> None:
        root = project(tmp_path, {})
        alone = pulumi_config(dict(read_stack("prod", root).config))
        thousand_apps(root, 1000)
        stack = read_stack("prod", root)
        assert pulumi_config(dict(stack.config)) == alone
        assert len(alone.encode()) < MAX_ARG_STRLEN // 8
        assert len(spec_of_config(stack).apps) == 1000

    def test_the_same_applications_in_the_stack_config_would_not_start(self, tmp_path: Path) -> None:
        # What this layout avoids: each app's entry, secret and role in PULUMI_CONFIG pass the cap.
        root = project(tmp_path, {})
        thousand_apps(root, 1000)
        config = dict(read_stack("prod", root).config)
        config[f"{P}apps"] = [dict(file.document) for file in read_apps(root).files]
        assert len(pulumi_config(config).encode()) > MAX_ARG_STRLEN
