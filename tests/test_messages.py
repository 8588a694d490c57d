"""Messages that find the real mistake: every problem of a stack at once, unknown keys first with the
rename, items named by their name, durations with units, references that miss only the environment's
prefix; every number within the range a real cluster accepts; keys outside any namespace the program
reads; and, for each refusal whose fix is concrete, the fix applied and accepted."""

from __future__ import annotations

import contextvars
import json
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import config as runtime_config
from pulumi.runtime import settings

from environment import StackRefused, load_spec
from environment._reader import REMOVE
from environment.runtime import load_stack_spec
from platformctl.adapters.engine import ROOT
from platformctl.adapters.stackfile import read_stack
from platformctl.core.stack_config import StackConfig
from tests import test_spec
from tests.support import API_SERVICE, DELETE, app_document, apply_edits, declare_stack, edited, refusal, spec_of

P = "vault-platform:"
APP = API_SERVICE
PROD = f"{APP}environments.prod."
ROLE = f"{P}database.roles[0]"
CONNECTION = f"{P}database.connections[0]"
KV_SECRET = f"{P}kv.secrets.api-service.data.api_key"
SOCKET = {"path": "fluent", "type": "socket", "address": "fluent-bit.logging:5170"}
PKI_ROLE = f"{P}pki.roles[0]"
# The app with the longest token max TTL its cap allows, so that only tokenTtl's own cap binds.
APP_FILE = {**app_document(APP), "tokenMaxTtl": "24h"}
UNUSED_ROLE_ITEM = {"name": "batch-role", "connection": "postgres",
                    "grants": [{"privileges": ["SELECT"], "schema": "public"}]}


def refused(stack: str, changes: dict[str, Any]) -> StackRefused:
    with pytest.raises(StackRefused) as error:
        spec_of(stack, changes)
    return error.value


def load(config: StackConfig) -> None:
    load_spec(config.stack, config.config, config.secret_keys, ["platform-admin", "vault-iac"], apps=config.apps)


class TestEveryProblemAtOnce:
    def test_problems_in_several_sections_and_items_come_in_one_message(self) -> None:
        error = refused("prod", {f"{P}cluster.replicas": 4, f"{APP}tokenTtl": "8h",
                                 f"{ROLE}.maxTtl": "720h", f"{P}transit.keys[1].type": "aes512"})
        assert [problem.key for problem in error.problems] == [
            f"{P}cluster.replicas", f"{P}database.roles[api-role].maxTtl",
            f"{P}transit.keys[payments-receipts].type", f"{APP}tokenTtl"]
        assert str(error).splitlines()[0] == "stack 'prod': 4 problems in the config"
        assert str(error).splitlines()[1] == (
            "  1. config key 'vault-platform:cluster.replicas': 4 replicas is even; Raft needs an odd number to keep "
            "a majority through a failure. Fix: use 3 or 5")

    def test_one_problem_reads_as_before(self) -> None:
        error = refused("prod", {f"{P}cluster.replicas": 4})
        assert str(error) == ("stack 'prod', config key 'vault-platform:cluster.replicas': 4 replicas is even; Raft "
                              "needs an odd number to keep a majority through a failure. Fix: use 3 or 5")

    def test_the_program_stops_with_one_error_listing_them_all_and_declares_nothing(self) -> None:
        declaration = declare_stack("prod", {f"{P}cluster.replicas": 4, f"{APP}tokenTtl": "8h"})
        assert declaration.resources == ()
        assert declaration.error is not None
        assert declaration.error.startswith("stack 'prod': 2 problems in the config")

    def test_the_checks_of_one_item_all_report(self) -> None:
        error = refused("prod", {f"{APP}tokenTtl": "30s", f"{APP}policies": ["billing"], f"{PROD}kvPaths": ["x"],
                                 f"{ROLE}.defaultTtl": "30s", f"{ROLE}.maxTtl": "48h"})
        assert [problem.key for problem in error.problems] == [
            f"{P}database.roles[api-role].defaultTtl", f"{P}database.roles[api-role].maxTtl",
            f"{APP}tokenTtl", f"{PROD}kvPaths[0]", f"{APP}policies[0]"]

    def test_a_reference_to_a_refused_item_is_not_reported_twice(self) -> None:
        # The transit key is refused for its type; the app that uses it is not told it is undeclared.
        error = refused("prod", {f"{P}transit.keys[0].type": "aes512",
                                 f"{APP}transitKeys": [{"key": "payments-card-data", "operations": ["encrypt"]}]})
        assert [problem.key for problem in error.problems] == [f"{P}transit.keys[payments-card-data].type"]

    def test_a_failing_section_does_not_hide_the_next(self) -> None:
        error = refused("prod", {f"{P}cluster.chartVersion": "latest", f"{P}kv.maxVersions": 0})
        assert {problem.key for problem in error.problems} == {f"{P}cluster.chartVersion", f"{P}kv.maxVersions"}


class TestUnknownBeforeMissing:
    def test_a_misspelt_required_key_is_reported_as_the_misspelling(self) -> None:
        error = refused("prod", {f"{P}cluster.chartVersion": DELETE, f"{P}cluster.chartVersoin": "0.34.1"})
        (problem,) = error.problems
        assert (problem.key, problem.problem, problem.fix) == (
            f"{P}cluster.chartVersoin", "is not a known key (did you mean 'chartVersion'?)",
            "rename it to 'chartVersion', which is required")

    def test_a_misspelt_required_key_of_an_app_names_the_app(self) -> None:
        error = refused("prod", {f"{APP}serviceAccount": DELETE, f"{APP}serviceAcount": "api-service-sa"})
        assert [problem.key for problem in error.problems] == [f"{APP}serviceAcount"]

    def test_unknown_keys_come_first_and_all_of_them(self) -> None:
        error = refused("prod", {f"{P}cluster.replicas": 4, f"{APP}tokenTTL": "1h", f"{P}kv.maxVersion": 3})
        assert [(problem.key, problem.unknown_key) for problem in error.problems] == [
            (f"{P}kv.maxVersion", True), (f"{APP}tokenTTL", True), (f"{P}cluster.replicas", False)]

    def test_a_key_with_no_close_match_lists_the_known_ones(self) -> None:
        problem = refusal("prod", {f"{P}cluster.storage.size": "10Gi"}, f"{P}cluster.storage.size")
        assert problem.fix == "remove it; the known keys are audit, data, storageClass"


class TestNamesNotIndexes:
    @pytest.mark.parametrize(("changes", "key"), [
        ({f"{APP}tokenTtl": "8h"}, f"{APP}tokenTtl"),
        ({f"{ROLE}.defaultTtl": "2d"}, f"{P}database.roles[api-role].defaultTtl"),
        ({f"{P}transit.keys[1].type": "aes512"}, f"{P}transit.keys[payments-receipts].type"),
        ({f"{P}policies[0].rules[0].capabilities": ["write"]},
         f"{P}policies[api-secrets].rules[secret/data/production/api-service].capabilities[0]"),
        ({f"{P}audit.devices[1].filePath": "/var/log/vault.log"}, f"{P}audit.devices[stdout].filePath"),
        ({f"{PKI_ROLE}.keyBits": 4096}, f"{P}pki.roles[payments-api].keyBits"),
    ])
    def test_items_are_named_by_their_name(self, changes: dict[str, Any], key: str) -> None:
        assert [problem.key for problem in refused("prod", changes).problems] == [key]

    def test_an_item_without_a_usable_name_keeps_its_index(self) -> None:
        twin = {"name": "api-secrets", "rules": [{"path": "secret/data/production/api-service",
                                                  "capabilities": ["read"]}]}
        error = refused("prod", {f"{P}policies[1]": twin})
        assert [problem.key for problem in error.problems] == [f"{P}policies[1].name"]


class TestDurationsNeedAUnit:
    @pytest.mark.parametrize(("value", "fix"), [
        (60, "write it with its unit: 60s (= 1m) for seconds, 60m for minutes"),
        ("90", "write it with its unit: 90s (= 1m30s) for seconds, 90m for minutes"),
        (7, "write it with its unit: 7s for seconds, 7m for minutes"),
    ])
    def test_a_bare_number_is_refused_with_the_units_as_the_fix(self, value: Any, fix: str) -> None:
        problem = refusal("prod", {f"{APP}tokenTtl": value}, f"{APP}tokenTtl")
        assert (problem.problem, problem.fix) == (f"{value!r} has no unit", fix)

    def test_zero_needs_no_unit(self) -> None:
        assert spec_of("prod", {f"{P}kv.deleteVersionAfter": 0}).kv.delete_version_after == 0

    def test_durations_are_echoed_as_written(self) -> None:
        problem = refusal("prod", {f"{APP}tokenMaxTtl": "1441m"}, f"{APP}tokenMaxTtl")
        assert problem.problem == "tokenMaxTtl 1441m is above the cap of 1d"
        problem = refusal("prod", {f"{APP}tokenTtl": "90m", f"{APP}tokenMaxTtl": "60m"}, f"{APP}tokenTtl")
        assert problem.problem == "90m is above tokenMaxTtl (60m)"


class TestEnvironmentPrefix:
    def test_an_app_path_without_the_prefix_says_so(self) -> None:
        problem = refusal("prod", {f"{PROD}kvPaths": ["api-service"]}, f"{PROD}kvPaths[0]")
        assert (problem.problem, problem.fix) == (
            "KV path 'api-service' misses the environment's prefix 'production/'", "write 'production/api-service'")

    def test_a_policy_path_without_the_prefix_says_so(self) -> None:
        problem = refusal("prod", {f"{P}policies[0].rules[0].path": "secret/data/api-service"},
                          f"{P}policies[0].rules[0].path")
        assert problem.problem == ("'secret/data/api-service' refers to KV path 'api-service', which misses the "
                                   "environment's prefix 'production/'")
        assert problem.fix == "write 'production/api-service'"

    def test_another_environments_prefix_says_so(self) -> None:
        problem = refusal("prod", {f"{PROD}kvPaths": ["staging/api-service"]}, f"{PROD}kvPaths[0]")
        assert problem.problem == ("KV path 'staging/api-service' has another environment's prefix (this stack's "
                                   "is 'production')")

    def test_an_undeclared_path_is_still_undeclared(self) -> None:
        problem = refusal("prod", {f"{PROD}kvPaths": ["production/billing"]}, f"{PROD}kvPaths[0]")
        assert problem.problem == "KV path 'production/billing' is not declared"


class TestNamespaces:
    @pytest.mark.parametrize(("key", "meant"), [
        ("vault-platfrom:transit", "vault-platform:transit"),
        ("vualt:namespace", "vault:namespace"),
        ("kubernets:context", "kubernetes:context"),
    ])
    def test_a_misspelt_namespace_is_refused_with_the_key_meant(self, key: str, meant: str) -> None:
        problem = refusal("prod", {key: {"keys": []}, f"{P}transit": DELETE}, key)
        assert problem.problem == f"is in no namespace this program or its providers read (did you mean {meant!r}?)"
        assert problem.fix == f"rename it to {meant!r}"

    def test_a_misspelling_of_a_key_that_is_set_is_removed_not_renamed(self) -> None:
        problem = refusal("prod", {"vualt:address": "https://vault:8200"}, "vualt:address")
        assert (problem.fix, problem.edits) == ("remove it: 'vault:address' is set already",
                                                (("vualt:address", REMOVE),))

    def test_a_foreign_namespace_lists_the_ones_read(self) -> None:
        problem = refusal("prod", {"billing:owner": "x"}, "billing:owner")
        assert problem.fix == ("remove it, or move it under vault-platform: (namespaces read: vault-platform, "
                               "pulumi, vault, kubernetes, random, aws)")

    @pytest.mark.parametrize("key", ["aws:region", "kubernetes:context", "random:x", "pulumi:template",
                                     "vault:skipTlsVerify"])
    def test_the_providers_and_pulumis_namespaces_are_accepted(self, key: str) -> None:
        spec_of("prod", {key: "x"})

    def test_offline_the_stack_file_is_checked(self, tmp_path: Path) -> None:
        (tmp_path / "stacks").mkdir()
        committed = (ROOT / "stacks" / "Pulumi.prod.yaml").read_text()
        (tmp_path / "stacks" / "Pulumi.prod.yaml").write_text(committed + "  vault-platfrom:transit:\n    keys: []\n")
        with pytest.raises(StackRefused) as error:
            load(read_stack("prod", tmp_path))
        assert [problem.key for problem in error.value.problems] == ["vault-platfrom:transit"]

    def test_under_the_cli_the_whole_config_map_is_checked(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # The CLI hands the program every key of the stack in PULUMI_CONFIG (JSON text for objects).
        config = edited("prod", {"vault-platfrom:transit": {"keys": []}})
        monkeypatch.setenv("PULUMI_CONFIG", json.dumps(
            {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.config.items()}))
        monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(sorted(config.secret_keys)))

        def run() -> None:
            settings._set_stack("prod")
            runtime_config.CONFIG.set({})
            load_stack_spec()

        with pytest.raises(StackRefused) as error:
            contextvars.Context().run(run)
        assert [problem.key for problem in error.value.problems] == ["vault-platfrom:transit"]


# Each bound: the stack, the key, the value at the edge (accepted), the value just past it (refused),
# and words of the refusal.
BOUNDS: dict[str, tuple[str, str, Any, Any, str]] = {
    "replicas at most 7": ("prod", f"{P}cluster.replicas", 7, 9, "9 is above the maximum of 7 (Vault recommends"),
    "replicas at least 1": ("dev", f"{P}cluster.replicas", 1, 0, "0 is below the minimum of 1"),
    "injector replicas at most 10": ("prod", f"{P}cluster.injector.replicas", 10, 11, "above the maximum of 10"),
    "injector replicas at least 1": ("dev", f"{P}cluster.injector.replicas", 1, 0, "below the minimum of 1"),
    "generated length at least 16": ("dev", f"{KV_SECRET}.random.length", 16, 15, "below the minimum of 16"),
    "generated length at most 256": ("dev", f"{KV_SECRET}.random.length", 256, 257, "above the maximum of 256"),
    "data volume at least 1Gi": ("prod", f"{P}cluster.storage.data", "1Gi", "1023Mi", "outside the 1Gi to 16Ti"),
    "data volume never 0": ("prod", f"{P}cluster.storage.data", "1Gi", "0", "outside the 1Gi to 16Ti"),
    "audit volume at most 16Ti": ("prod", f"{P}cluster.storage.audit", "16Ti", "17Ti", "outside the 1Gi to 16Ti"),
    "memory at least 64Mi": ("prod", f"{P}cluster.resources.requests.memory", "64Mi", "63Mi", "below the 64Mi"),
    "memory in bytes": ("prod", f"{P}cluster.injector.resources.limits.memory", "256Mi", "256", "below the 64Mi"),
    "CPU at least 1m": ("prod", f"{P}cluster.resources.requests.cpu", "1m", "0", "less than the 1m"),
    "database port at least 1": ("prod", f"{CONNECTION}.port", 1, 0, "0 is below the minimum of 1"),
    "database port at most 65535": ("prod", f"{CONNECTION}.port", 65535, 65536, "above the maximum of 65535"),
    "audit socket port at most 65535": (
        "prod", f"{P}audit.devices[2]", {**SOCKET, "address": "fluent-bit.logging:65535"},
        {**SOCKET, "address": "fluent-bit.logging:65536"}, "port 65536 is outside 1 to 65535"),
    "audit socket port at least 1": (
        "prod", f"{P}audit.devices[2]", {**SOCKET, "address": "fluent-bit.logging:1"},
        {**SOCKET, "address": "fluent-bit.logging:0"}, "port 0 is outside 1 to 65535"),
    "PKI URL port at most 65535": ("prod", f"{P}pki.urlBase", "https://vault.vault.svc:65535",
                                   "https://vault.vault.svc:65536", "port 65536 is outside 1 to 65535"),
    "KV versions at most 100": ("prod", f"{P}kv.maxVersions", 100, 101, "above the maximum of 100"),
    "KV versions at least 1": ("prod", f"{P}kv.maxVersions", 1, 0, "below the minimum of 1"),
    "prod KV deletion after 30 days or more": ("prod", f"{P}kv.deleteVersionAfter", "30d", "29d23h59m59s",
                                               "prod keeps a version at least 30d"),
    "prod KV deletion not after seconds": ("prod", f"{P}kv.deleteVersionAfter", "720h", "5s",
                                           "5s would soft-delete every version"),
    "dev KV deletion after an hour or more": ("dev", f"{P}kv.deleteVersionAfter", "1h", "59m",
                                              "dev keeps a version at least 1h"),
    "token TTL at least 1m": ("prod", f"{APP}tokenTtl", "1m", "59s", "59s is below the minimum of 1m"),
    "token TTL at most 4h": ("prod", APP, {**APP_FILE, "tokenTtl": "4h"}, {**APP_FILE, "tokenTtl": "4h1s"},
                             "tokenTtl 4h1s is above the cap of 4h"),
    "token max TTL at most 1d": ("prod", f"{APP}tokenMaxTtl", "24h", "24h1s", "above the cap of 1d"),
    "database TTL at least 1m": ("prod", f"{ROLE}.defaultTtl", "1m", "59s", "below the minimum of 1m"),
    # A role no application takes credentials from, so that only the cap binds (not the app's tokenMaxTtl).
    "database max TTL at most 1d": ("prod", f"{P}database.roles[1]", {**UNUSED_ROLE_ITEM, "maxTtl": "1d"},
                                    {**UNUSED_ROLE_ITEM, "maxTtl": "1d1s"}, "above the cap of 1d"),
    "transit rotation at least 1h": ("prod", f"{P}transit.keys[0].autoRotatePeriod", "1h", "59m59s",
                                     "shorter than the 1h Vault allows"),
    "latency alert at most 90s": ("prod", f"{P}monitoring.requestLatencyMs", 90000, 90001,
                                  "above the maximum of 90000 (Vault ends a request after 90s"),
    "CRL at least 1d": ("prod", f"{P}pki.crlExpiry", "24h", "23h59m", "leaves no room to rebuild the CRL"),
    "static role rotation at least 1m": (
        "prod", f"{P}database.staticRoles",
        [{"name": "reporting", "connection": "postgres", "username": "reporting_user", "rotationPeriod": "1m"}],
        [{"name": "reporting", "connection": "postgres", "username": "reporting_user", "rotationPeriod": "59s"}],
        "Vault rotates at most once a minute"),
}


class TestBounds:
    @pytest.mark.parametrize(("stack", "key", "edge", "past", "words"), BOUNDS.values(), ids=BOUNDS.keys())
    def test_the_edge_passes_and_just_past_it_is_refused(self, stack: str, key: str, edge: Any, past: Any,
                                                         words: str) -> None:
        spec_of(stack, {key: edge})
        messages = [f"{problem.problem}. Fix: {problem.fix}" for problem in refused(stack, {key: past}).problems]
        assert any(words in message for message in messages), messages

    def test_an_absurd_replica_count_is_refused_before_any_raft_block_is_built(self) -> None:
        problem = refusal("prod", {f"{P}cluster.replicas": 100001}, f"{P}cluster.replicas")
        assert problem.fix == "use 1 to 7"
        assert problem.edits == ((f"{P}cluster.replicas", 7),)


class TestFixesThatWork:
    @pytest.mark.parametrize(("stack", "replicas", "fix"), [
        ("prod", 2, "use 3 or 5"), ("prod", 4, "use 3 or 5"), ("prod", 6, "use 5 or 7"), ("prod", 1, "use 3 or 5"),
        ("staging", 1, "use 3 or 5"), ("dev", 2, "use 1 or 3")])
    def test_a_replica_fix_names_only_counts_the_tier_accepts(self, stack: str, replicas: int, fix: str) -> None:
        assert refusal(stack, {f"{P}cluster.replicas": replicas}, f"{P}cluster.replicas").fix == fix

    def test_a_ttl_above_its_cap_names_the_cap(self) -> None:
        assert refusal("prod", {f"{ROLE}.maxTtl": "48h"}, f"{ROLE}.maxTtl").fix == "use at most 1d"

    @pytest.mark.parametrize(("name", "why"), [
        ("default", "'default' is reserved: Vault's built-in policy, attached to every token"),
        ("root", "'root' is reserved: Vault's built-in policy that grants everything"),
        ("vault-iac", "'vault-iac' is reserved: the hand-written policy in policies/acl/vault-iac.hcl"),
        ("app-billing", "'app-billing' is reserved: names starting with 'app-' are the policies generated per "
                        "application"),
    ])
    def test_a_reserved_policy_name_says_why(self, name: str, why: str) -> None:
        problem = refusal("prod", {f"{P}policies[0].name": name}, f"{P}policies[0].name")
        assert problem.problem.startswith(why)


def _cases() -> dict[str, tuple[str, dict[str, Any]]]:
    """Every refusal the tests provoke: the spec tests' bad input, and each bound just past its edge."""
    cases: dict[str, tuple[str, dict[str, Any]]] = {
        name: (stack, changes) for name, (stack, changes, _, _) in test_spec.BAD_INPUT.items()}
    cases.update({name: (stack, {key: past}) for name, (stack, key, _, past, _) in BOUNDS.items()})
    cases.update({
        "bare number duration": ("prod", {f"{APP}tokenTtl": 60}),
        "misspelt required key": ("prod", {f"{P}cluster.chartVersion": DELETE, f"{P}cluster.chartVersoin": "0.34.1"}),
        "misspelt namespace": ("prod", {"vault-platfrom:transit": {"keys": []}, f"{P}transit": DELETE}),
        "misspelt top-level key": ("prod", {f"{P}transt": {"keys": []}}),
        "KV path without the prefix": ("prod", {f"{PROD}kvPaths": ["api-service"]}),
        "policy path without the prefix": ("prod", {f"{P}policies[0].rules[0].path": "secret/data/api-service"}),
        "even replicas and a TTL above the cap": ("prod", {f"{P}cluster.replicas": 4, f"{ROLE}.maxTtl": "48h",
                                                           f"{APP}tokenMaxTtl": "24h"}),
        "secret audit field": ("prod", {f"{P}audit.clearKeys[0].request": ["common_name", "pem_bundle", "ttl"]}),
        "connection misspelt": ("prod", {f"{ROLE}.connection": "postgress"}),
        "http URL in prod": ("prod", {f"{P}pki.urlBase": "http://vault.vault.svc:8200"}),
        "audit device type misspelt": ("prod", {f"{P}audit.devices[0].type": "flie"}),
    })
    return cases


CASES = _cases()
# Refusals whose fix must be concrete (machine-applied below); the test fails if one loses its edits.
# Refusals whose fix is concrete: the message's fix in machine form (edits), applied below.
CONCRETE = [
    "unknown top-level key", "unknown nested key", "unknown key in an app", "even replicas", "even replicas in dev",
    "one replica in staging", "TLS off in prod", "one injector in prod", "default TTL above max TTL",
    "token TTL above token max TTL", "check-and-set off in prod", "token TTL above the cap",
    "token max TTL above the cap", "database max TTL above the cap", "database default TTL of 0",
    "auth method on Vault's token path", "port out of range", "short generated secret",
    "Vault in the dev database's namespace", "CPU request above its limit", "memory request above its limit",
    *(name for name in BOUNDS if not name.startswith("audit socket port")),
    "bare number duration", "misspelt required key", "misspelt namespace", "misspelt top-level key",
    "KV path without the prefix", "policy path without the prefix", "even replicas and a TTL above the cap",
    "secret audit field", "connection misspelt", "http URL in prod", "audit device type misspelt",
]


class TestEveryConcreteFixIsAccepted:
    @pytest.mark.parametrize("name", CASES)
    def test_a_concrete_fix_comes_in_machine_form_and_is_accepted(self, name: str) -> None:
        stack, changes = CASES[name]
        error = refused(stack, changes)
        concrete = all(problem.edits for problem in error.problems)
        # The others need a decision (a name, a path, a value only the team knows).
        assert concrete == (name in CONCRETE), str(error)
        if concrete:
            load(apply_edits(stack, changes, tuple(edit for problem in error.problems for edit in problem.edits)))


class TestAuditClearKeys:
    @pytest.mark.parametrize("field", ["pem_bundle", "private_key", "certificate_bundle", "ca_chain_bundle",
                                       "db_password", "password", "secret_id", "client_secret", "token",
                                       "client_token", "wrapping_token", "data", "plaintext", "key"])
    def test_a_field_that_can_carry_a_secret_is_never_logged_in_clear(self, field: str) -> None:
        problem = refusal("prod", {f"{P}audit.clearKeys[0].response": ["expiration", field]},
                          f"{P}audit.clearKeys[0].response[1]")
        assert problem.problem == f"{field!r} can carry a secret or a private key and is never logged in clear"
        assert problem.edits == ((f"{P}audit.clearKeys[pki_int].response", ["expiration"]),)

    @pytest.mark.parametrize("field", ["common_name", "serial_number", "expiration", "key_version", "ttl",
                                       "certificate", "issuer_id"])
    def test_a_plain_field_may_be(self, field: str) -> None:
        spec = spec_of("prod", {f"{P}audit.clearKeys[0].response": [field]})
        assert spec.audit.clear_keys[0].response_keys == (field,)


class TestPkiDomains:
    @pytest.mark.parametrize(("domains", "subdomains", "words"), [
        (["com"], False, "'com' is a public suffix"),
        (["co.uk"], True, "'co.uk' is a public suffix"),
        (["github.io"], True, "'github.io' is a public suffix"),
        (["internal"], True, "'internal' is a top-level name: with subdomains allowed, the role would issue for "
                             "every *.internal"),
        (["svc"], True, "'svc' is a top-level name"),
    ])
    def test_a_domain_the_organisation_cannot_own_is_refused(self, domains: list[str], subdomains: bool,
                                                             words: str) -> None:
        problem = refusal("prod", {f"{PKI_ROLE}.allowedDomains": domains, f"{PKI_ROLE}.allowSubdomains": subdomains},
                          f"{PKI_ROLE}.allowedDomains[0]")
        assert problem.problem.startswith(words)

    @pytest.mark.parametrize(("domains", "subdomains"), [
        (["payments.example.com"], True), (["example.co.uk"], True), (["payments-api"], False),
        (["payments.svc.cluster.local"], True), (["vault.prod.internal"], True)])
    def test_a_domain_below_a_suffix_is_accepted(self, domains: list[str], subdomains: bool) -> None:
        spec = spec_of("prod", {f"{PKI_ROLE}.allowedDomains": domains, f"{PKI_ROLE}.allowSubdomains": subdomains})
        assert spec.pki is not None
        assert spec.pki.roles[0].allowed_domains == tuple(domains)
