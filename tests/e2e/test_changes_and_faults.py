"""Issue 17, changes, on the e2e-prod stack (:mod:`tests.e2e.external`), in this order since they share
its state: changes a platform team makes: an application onboarded in a file of its own, a KV secret
changed under check-and-set, a transit engine removed in the two steps ``removals`` asks for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
import yaml
from hvac.exceptions import Forbidden, InvalidPath  # type: ignore[import-untyped]
from kubernetes import client as kubernetes_client

from tests.e2e.external import (
    APP,
    APP_NAMESPACE,
    NEEDS_ROOT,
    SECRETS,
    STACK,
    AppliedExternal,
    applied_external,
    service_account_token,
)
from tests.e2e.project import PulumiProject
from tests.e2e.servers import KubeCluster
from tests.e2e.tools import Tools

ORDERS = "orders"
"""The application onboarded here (``apps/e2e/orders.yaml``), its service account and its Vault role."""
ORDERS_SECRET = "ordersApiKey"
TRANSIT_KEY = "checkout-card-data"
CAS_MISMATCH = "check-and-set parameter did not match the current version"
"""Vault's refusal of a KV v2 write naming another version (hashicorp/vault-plugin-secrets-kv, path_data.go)."""


@pytest.fixture(scope="module")
def external(tools: Tools, cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppliedExternal]:
    if os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)
    with applied_external(tools, cluster, tmp_path_factory.mktemp("changes"), "127.0.0.44") as applied:
        yield applied


def set_stack_secret(project: PulumiProject, key: str, value: str) -> None:
    project.run("config", "set", "--stack", STACK, "--secret", f"vault-platform:{key}", value)


def edit_section(project: PulumiProject, key: str, edit: Callable[[Any], Any]) -> None:
    """``vault-platform:<key>`` of the copy's stack file replaced by what ``edit`` makes of it (``None``: removed)."""
    path = project.root / "stacks" / f"Pulumi.{STACK}.yaml"
    document = yaml.safe_load(path.read_text())
    value = edit(document["config"].get(f"vault-platform:{key}"))
    if value is None:
        document["config"].pop(f"vault-platform:{key}")
    else:
        document["config"][f"vault-platform:{key}"] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def failed_up(project: PulumiProject) -> str:
    """The output of an ``up`` that must fail."""
    result = project.up(STACK, check=False)
    assert result.returncode != 0, result.stdout[-3000:]
    return result.stdout + result.stderr


def kv_data(external: AppliedExternal, path: str) -> tuple[int, dict[str, str]]:
    """The secret's current version and values, read with the root token."""
    answer = external.vault.client().secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    return answer["data"]["metadata"]["version"], answer["data"]["data"]


def transit_key(external: AppliedExternal) -> dict[str, Any]:
    answer: dict[str, Any] = external.vault.client().secrets.transit.read_key(TRANSIT_KEY)["data"]
    return answer


def test_an_app_onboarded_in_its_own_file_logs_in_and_reads_its_secret(external: AppliedExternal) -> None:
    project = external.project
    (project.root / "apps" / "e2e" / f"{ORDERS}.yaml").write_text(yaml.safe_dump({
        "namespace": APP_NAMESPACE, "serviceAccount": ORDERS, "kvPaths": [f"production/{ORDERS}"],
        "environments": {STACK: None}}))
    edit_section(project, "kv", lambda kv: {**kv, "secrets": {
        **kv["secrets"], ORDERS: {"data": {"api_key": {"fromSecret": ORDERS_SECRET}}}}})
    set_stack_secret(project, ORDERS_SECRET, "orders-key-1")
    kubernetes_client.CoreV1Api(external.cluster.api()).create_namespaced_service_account(
        APP_NAMESPACE, cast(Any, {"metadata": {"name": ORDERS}}))
    project.up(STACK)

    jwt = service_account_token(external.cluster, APP_NAMESPACE, ORDERS, audience="vault")
    token = external.vault.client(token="").auth.kubernetes.login(role=ORDERS, jwt=jwt)["auth"]["client_token"]
    orders = external.vault.client(token)
    answer = orders.secrets.kv.v2.read_secret_version(path=f"production/{ORDERS}", raise_on_deleted_version=True)
    assert answer["data"]["data"] == {"api_key": "orders-key-1"}
    with pytest.raises(Forbidden):
        orders.secrets.kv.v2.read_secret_version(path=f"production/{APP}", raise_on_deleted_version=True)


def test_a_kv_secret_changes_only_with_its_current_version(external: AppliedExternal) -> None:
    project = external.project
    path = f"production/{APP}"
    assert kv_data(external, path) == (1, {"api_key": SECRETS["checkoutApiKey"]})

    def change(value: str, cas_version: int) -> None:
        set_stack_secret(project, "checkoutApiKey", value)
        edit_section(project, "kv", lambda kv: {**kv, "secrets": {
            **kv["secrets"], APP: {**kv["secrets"][APP], "casVersion": cas_version}}})

    change("checkout-key-2", 1)  # README, "Changing a KV secret in prod": the current version
    project.up(STACK)
    assert kv_data(external, path) == (2, {"api_key": "checkout-key-2"})

    change("checkout-key-3", 1)  # stale: version 2 is current
    assert CAS_MISMATCH in failed_up(project)
    assert kv_data(external, path) == (2, {"api_key": "checkout-key-2"})
    # The failed write is still pending (the state does not take it for done), and the fix is the version.
    pending = project.preview(STACK)
    assert [step["op"] for step in pending["steps"] if step["urn"].endswith(f"-kv-{APP}")] == ["update"]
    change("checkout-key-3", 2)
    project.up(STACK)
    assert kv_data(external, path) == (3, {"api_key": "checkout-key-3"})


def test_the_transit_engine_is_deleted_only_after_its_removal_is_stated(external: AppliedExternal) -> None:
    project = external.project
    transit = project.stack_config(STACK)["vault-platform:transit"]
    app_file = project.root / "apps" / "e2e" / f"{APP}.yaml"
    app = yaml.safe_load(app_file.read_text())
    app_file.write_text(yaml.safe_dump({key: value for key, value in app.items() if key != "transitKeys"}))
    edit_section(project, "transit", lambda _: None)
    refusal = (f'SecretBackendKey::vault-transit-{TRANSIT_KEY}" cannot be deleted', "because it is protected")
    # The workflow's preview step stops the job first; an up by hand gets as far as the deletion.
    preview = project.run("preview", "--stack", STACK, "--non-interactive", check=False)
    assert preview.returncode != 0
    assert all(part in preview.stdout for part in refusal), preview.stdout[-3000:]
    output = failed_up(project)
    assert all(part in output for part in refusal), output[-3000:]
    assert transit_key(external)["deletion_allowed"] is False
    assert "transit/" in external.vault.client().sys.list_mounted_secrets_engines()["data"]

    # State it, the section still there: the up unprotects the mount and its key, and lets Vault delete the key.
    edit_section(project, "transit", lambda _: transit)
    edit_section(project, "removals", lambda _: ["sys/mounts/transit"])
    project.up(STACK)
    assert transit_key(external)["deletion_allowed"] is True

    edit_section(project, "transit", lambda _: None)
    project.up(STACK)
    assert "transit/" not in external.vault.client().sys.list_mounted_secrets_engines()["data"]
    with pytest.raises(InvalidPath):
        transit_key(external)
