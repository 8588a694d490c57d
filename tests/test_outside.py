"""What a stack needs outside the repository: stack secrets to set, the DBA's grants, the Vault CA
secret per application namespace; all of it for a plan, what is new for a pull request."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from environment.apps import read_apps
from platformctl.adapters.stackfile import stack_config, stack_file
from platformctl.core.outside import Needs, NewSecret, checklist, checklist_markdown, checklist_text, needs_of
from tests.support import TEST_STACKS, any_stack, edited, spec_of, spec_of_config

P = "vault-platform:"


def needs(stack: str, changes: dict[str, object] | None = None, **kwargs: object) -> Needs:
    config = edited(stack, changes, **kwargs)  # type: ignore[arg-type]
    return needs_of(config, spec_of_config(config))


def document_of(stack: str) -> dict[str, Any]:
    return dict(yaml.safe_load(stack_file(stack, TEST_STACKS).read_text()))


def onboarded(stack: str) -> Needs:
    config = any_stack(f"{stack}+onboarded", root=TEST_STACKS)
    return needs_of(config, spec_of_config(config))


class TestNeeds:
    def test_staging_needs_its_secrets_grants_and_the_ca_in_its_namespace(self) -> None:
        staging = needs("staging")
        assert staging.secrets == (f"{P}apiServiceApiKey", f"{P}apiServiceDatabaseUrl", f"{P}oidcClientSecret",
                                   f"{P}postgresAdminPassword", "vault:token")
        assert staging.stored_secrets == {"vault:token"}  # the file holds it as a `secure:` value
        assert staging.grants == (("postgres", "public", "INSERT"), ("postgres", "public", "SELECT"),
                                  ("postgres", "public", "UPDATE"))
        assert staging.static_users == ()
        assert (staging.ca_secret, staging.ca_namespaces, staging.tls_source) == (
            "vault-ca", ("staging",), ("vault", "vault-tls"))

    def test_without_tls_no_namespace_needs_the_ca(self) -> None:
        dev = needs("dev")
        assert (dev.ca_secret, dev.ca_namespaces) == (None, ())
        assert dev.secrets == ("vault:token",)  # dev generates the rest with pulumi-random

    def test_no_dba_work_for_the_in_cluster_database_which_sets_itself_up(self) -> None:
        dev = needs("dev", {f"{P}database.staticRoles": [{"name": "reporting", "connection": "postgres",
                                                          "username": "reporting"}]})
        database = spec_of("dev").database
        assert database is not None
        assert database.connections[0].in_cluster
        assert (dev.grants, dev.static_users) == ((), ())
        assert checklist_text(checklist(dev)) == ["Needs outside the repository (no `pulumi up` does these):",
                                                  "  [ ] Set stack secret 'vault:token' (already in "
                                                  "stacks/Pulumi.dev.yaml)"]

    def test_a_dev_database_outside_the_cluster_needs_the_dba(self) -> None:
        shared = {"name": "postgres", "host": "postgres.dev.internal", "port": 5432, "database": "app",
                  "adminUser": "vault_admin", "adminPassword": {"fromSecret": "postgresAdminPassword"}}
        dev = needs("dev", {f"{P}database.connections": [shared], f"{P}postgresAdminPassword": "x"},
                    secret_keys={"vault:token", f"{P}postgresAdminPassword", f"{P}oidcClientSecret"})
        assert dev.grants == (("postgres", "public", "INSERT"), ("postgres", "public", "SELECT"),
                              ("postgres", "public", "UPDATE"))

    def test_a_secure_value_in_the_stack_file_counts_as_set(self) -> None:
        document = document_of("staging")
        document["config"][f"{P}apiServiceApiKey"] = {"secure": "v1:AAAA"}
        config = stack_config("staging", document, read_apps(TEST_STACKS))
        assert needs_of(config, spec_of_config(config)).stored_secrets == {f"{P}apiServiceApiKey", "vault:token"}
        check = checklist(needs_of(config, spec_of_config(config)))
        assert NewSecret(f"{P}apiServiceApiKey", stored=True, did_you_mean=None) in check.secrets
        assert "  [ ] Set stack secret 'vault-platform:apiServiceApiKey' (already in stacks/Pulumi.staging.yaml)" in (
            checklist_text(check))


class TestChecklist:
    def test_onboarding_needs_a_secret_a_grant_a_static_user_and_the_ca(self) -> None:
        check = checklist(onboarded("staging"), needs("staging"), "origin/main")
        assert check.secrets == (NewSecret(f"{P}ordersApiToken", stored=False, did_you_mean=None),)
        assert check.grants == (("postgres", "orders_api", ("SELECT",)),)
        assert check.static_users == (("postgres", "orders_api_reporting"),)
        assert (check.ca_secret, check.ca_namespaces) == ("vault-ca", ("orders",))
        assert checklist_text(check) == [
            "Needs outside the repository that origin/main did not (no `pulumi up` does these):",
            "  [ ] Set stack secret 'vault-platform:ordersApiToken' (not in stacks/Pulumi.staging.yaml yet: set it "
            "before `pulumi up`)",
            "        pulumi config set --secret --stack staging vault-platform:ordersApiToken",
            "  [ ] DBA: apply the admin set-up for SELECT on schema 'orders_api' (postgres); existing user "
            "'orders_api_reporting' for a static role (postgres)",
            "        venv/bin/python -m platformctl db-setup staging --since origin/main",
            "  [ ] Put the Vault CA secret 'vault-ca' (key ca.crt) in namespace 'orders'",
            "        kubectl -n vault get secret vault-tls -o jsonpath='{.data.ca\\.crt}' | base64 -d > ca.crt",
            "        kubectl -n orders create secret generic vault-ca --from-file=ca.crt",
        ]

    def test_a_misspelt_secret_name_is_flagged_with_the_name_it_resembles(self) -> None:
        # As the stack file is read: the misspelt name gets a placeholder and passes offline.
        document = document_of("staging")
        document["config"][f"{P}kv"]["secrets"]["api-service"]["data"]["api_key"] = {"fromSecret": "apiServiceApikey"}
        config = stack_config("staging", document, read_apps(TEST_STACKS))
        misspelt = needs_of(config, spec_of_config(config))
        check = checklist(misspelt, needs("staging"), "origin/main")
        assert check.secrets == (NewSecret(f"{P}apiServiceApikey", stored=False,
                                           did_you_mean=f"{P}apiServiceApiKey"),)
        assert "or fix the name: did you mean `vault-platform:apiServiceApiKey`?" in checklist_markdown([check])

    def test_a_new_privilege_on_a_known_schema_is_a_grant_too(self) -> None:
        wider = needs("staging", {f"{P}database.roles[0].grants[0].privileges": ["SELECT", "INSERT", "UPDATE",
                                                                                  "DELETE"]})
        assert checklist(wider, needs("staging"), "main").grants == (("postgres", "public", ("DELETE",)),)

    def test_no_change_needs_nothing(self) -> None:
        check = checklist(needs("staging"), needs("staging"), "origin/main")
        assert check.empty
        assert checklist_text(check) == ["Needs outside the repository that origin/main did not: nothing."]
        assert checklist_markdown([check]) == (
            "### Outside the repository\n\n"
            "Nothing: no new stack secret, database grant, namespace needing the Vault CA or snapshot bucket.\n")

    def test_without_a_base_everything_is_listed(self) -> None:
        check = checklist(needs("staging"))
        assert [secret.key for secret in check.secrets] == list(needs("staging").secrets)
        assert check.since is None
        assert "        venv/bin/python -m platformctl db-setup staging" in checklist_text(check)

    @pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
    def test_the_markdown_names_the_stack_on_every_item(self, stack: str) -> None:
        markdown = checklist_markdown([checklist(onboarded(stack), needs(stack), "origin/main")])
        items = [line for line in markdown.splitlines() if line.startswith("- [ ]")]
        assert items
        assert all(line.startswith(f"- [ ] **{stack}**: ") for line in items)
        assert f"pulumi config set --secret --stack {stack} vault-platform:ordersApiToken" in markdown


class TestSnapshotBucket:
    def test_a_stack_that_starts_taking_snapshots_needs_its_bucket_and_role(self) -> None:
        base = needs("dev")
        head = needs("dev", {f"{P}snapshots": {"bucket": "acme-vault-snapshots-dev", "region": "eu-west-1",
                                               "roleArn": "arn:aws:iam::111111111111:role/vault-dev-snapshots"}})
        check = checklist(head, base, "origin/main")
        assert check.snapshot_bucket == ("acme-vault-snapshots-dev", "eu-west-1",
                                         "arn:aws:iam::111111111111:role/vault-dev-snapshots")
        assert checklist_text(check)[-2:] == [
            "  [ ] Create the snapshot bucket 'acme-vault-snapshots-dev' (eu-west-1) and the snapshot job's IAM role "
            "'arn:aws:iam::111111111111:role/vault-dev-snapshots' with the policy and trust conditions the command "
            "prints",
            "        venv/bin/python -m platformctl bootstrap-state dev --bucket-prefix <state bucket prefix> "
            "--region <state region>",
        ]

    def test_an_unchanged_bucket_needs_nothing_and_a_new_one_is_listed(self) -> None:
        assert checklist(needs("prod"), needs("prod"), "main").snapshot_bucket is None
        moved = needs("prod", {f"{P}snapshots.bucket": "acme-vault-snapshots-prod-2"})
        assert checklist(moved, needs("prod"), "main").snapshot_bucket is not None
        assert checklist(needs("prod")).snapshot_bucket == needs("prod").snapshot_bucket
