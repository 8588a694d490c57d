"""The Helm values and Raft configuration, checked against the official chart's own schema and
defaults, and the server configuration parsed as HCL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hcl2
import jsonschema
import pytest
import yaml

from components.render.helm_values import helm_values, raft_config
from tests.support import ANY_STACK, COMMITTED, STACKS, any_stack, spec_of, spec_of_config

CHART = Path(__file__).resolve().parent / "reference" / "vault-helm"
# Keys whose values are free-form maps or lists in the chart (Kubernetes objects, annotations).
FREE_FORM = ("affinity", "resources", "extraEnvironmentVars", "annotations", "volumes", "volumeMounts",
             "podDisruptionBudget")


def chart_schema() -> dict[str, Any]:
    return dict(json.loads((CHART / "values.schema.json").read_text()))


def chart_defaults() -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / "values.yaml").read_text()))


def parse_raft(stack: str, **changes: Any) -> dict[str, Any]:
    return dict(hcl2.loads(raft_config(spec_of(stack, changes or None))))


def unquote(value: str) -> str:
    return value[1:-1] if value.startswith('"') else value


class TestAgainstTheChart:
    def test_reference_is_the_pinned_chart(self) -> None:
        chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
        assert (chart["version"], chart["appVersion"]) == ("0.34.1", "2.0.4")
        assert {spec_of_config(any_stack(stack)).cluster.chart_version for stack in COMMITTED} == {chart["version"]}

    @pytest.mark.parametrize("stack", ANY_STACK)
    def test_values_validate_against_the_chart_schema(self, stack: str) -> None:
        # The chart's schema names draft-07 by an https URL jsonschema does not map: say it outright.
        jsonschema.Draft7Validator(chart_schema()).validate(helm_values(spec_of_config(any_stack(stack))))

    def test_schema_check_can_fail(self) -> None:
        values = helm_values(spec_of("prod"))
        values["server"]["ha"]["replicas"] = "five"
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft7Validator(chart_schema()).validate(values)

    @pytest.mark.parametrize("stack", ANY_STACK)
    def test_every_key_is_one_the_chart_declares(self, stack: str) -> None:
        unknown = list(_unknown_keys(helm_values(spec_of_config(any_stack(stack))), chart_defaults(), ""))
        assert unknown == []

    def test_unknown_key_check_can_fail(self) -> None:
        assert list(_unknown_keys({"server": {"haa": {}}}, chart_defaults(), "")) == ["server.haa"]


def _unknown_keys(values: dict[str, Any], defaults: dict[str, Any], prefix: str) -> list[str]:
    found = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in defaults:
            found.append(path)
        elif isinstance(value, dict) and isinstance(defaults[key], dict) and key not in FREE_FORM:
            found += _unknown_keys(value, defaults[key], f"{path}.")
    return found


class TestHighAvailability:
    @pytest.mark.parametrize(("stack", "replicas", "max_unavailable"), [("dev", 1, 1), ("staging", 3, 1),
                                                                        ("prod", 5, 2)])
    def test_ha_raft_with_node_ids_and_a_budget(self, stack: str, replicas: int, max_unavailable: int) -> None:
        server = helm_values(spec_of(stack))["server"]
        assert server["ha"]["enabled"] is True
        assert server["ha"]["replicas"] == replicas
        assert server["ha"]["raft"]["enabled"] is True
        assert server["ha"]["raft"]["setNodeId"] is True
        assert server["ha"]["disruptionBudget"] == {"enabled": True, "maxUnavailable": max_unavailable}
        assert server["standalone"] == {"enabled": False}
        assert server["includeConfigAnnotation"] is True

    def test_servers_never_share_a_node(self) -> None:
        rule = helm_values(spec_of("prod"))["server"]["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"][0]
        assert rule["topologyKey"] == "kubernetes.io/hostname"
        assert rule["labelSelector"]["matchLabels"] == {
            "app.kubernetes.io/name": "vault", "app.kubernetes.io/instance": "vault", "component": "server"}

    @pytest.mark.parametrize(("stack", "replicas"), [("dev", 1), ("staging", 2), ("prod", 3)])
    def test_injector(self, stack: str, replicas: int) -> None:
        injector = helm_values(spec_of(stack))["injector"]
        assert injector["enabled"] is True
        assert injector["replicas"] == replicas
        assert injector["authPath"] == "auth/kubernetes"
        assert ("podDisruptionBudget" in injector) is (replicas > 1)

    @pytest.mark.parametrize(("stack", "data", "audit"), [("dev", "1Gi", "1Gi"), ("prod", "50Gi", "50Gi")])
    def test_storage_and_resources(self, stack: str, data: str, audit: str) -> None:
        server = helm_values(spec_of(stack))["server"]
        assert (server["dataStorage"]["enabled"], server["dataStorage"]["size"]) == (True, data)
        assert (server["auditStorage"]["enabled"], server["auditStorage"]["size"]) == (True, audit)
        assert server["auditStorage"]["mountPath"] == "/vault/audit"

    def test_prod_resources(self) -> None:
        assert helm_values(spec_of("prod"))["server"]["resources"] == {
            "requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}


class TestTls:
    def test_prod_serves_tls_from_the_mounted_secret(self) -> None:
        values = helm_values(spec_of("prod"))
        assert values["global"]["tlsDisable"] is False
        assert values["server"]["volumes"] == [{"name": "vault-tls", "secret": {"secretName": "vault-tls"}}]
        assert values["server"]["volumeMounts"] == [
            {"name": "vault-tls", "mountPath": "/vault/userconfig/vault-tls", "readOnly": True}]
        assert values["server"]["extraEnvironmentVars"] == {"VAULT_CACERT": "/vault/userconfig/vault-tls/ca.crt"}

    def test_dev_may_turn_tls_off(self) -> None:
        values = helm_values(spec_of("dev"))
        assert values["global"]["tlsDisable"] is True
        assert "volumes" not in values["server"]
        listener = parse_raft("dev")["listener"][0]['"tcp"']
        assert listener["tls_disable"] == 1


class TestRaftConfig:
    @pytest.mark.parametrize("stack", STACKS)
    def test_one_retry_join_per_replica(self, stack: str) -> None:
        spec = spec_of(stack)
        raft = parse_raft(stack)["storage"][0]['"raft"']
        scheme = "https" if spec.cluster.tls.enabled else "http"
        assert [unquote(join["leader_api_addr"]) for join in raft["retry_join"]] == [
            f"{scheme}://vault-{i}.vault-internal:8200" for i in range(spec.cluster.replicas)]
        assert unquote(raft["path"]) == "/vault/data"

    def test_tls_peers_are_verified(self) -> None:
        joins = parse_raft("staging")["storage"][0]['"raft"']["retry_join"]
        assert [(unquote(j["leader_ca_cert_file"]), unquote(j["leader_tls_servername"])) for j in joins] == [
            ("/vault/userconfig/vault-tls/ca.crt", f"vault-{i}.vault-internal") for i in range(3)]
        listener = parse_raft("staging")["listener"][0]['"tcp"']
        assert unquote(listener["tls_cert_file"]) == "/vault/userconfig/vault-tls/tls.crt"
        assert "tls_disable" not in listener

    def test_kubernetes_service_registration(self) -> None:
        assert '"kubernetes"' in parse_raft("prod")["service_registration"][0]

    def test_awskms_seal_and_irsa(self) -> None:
        seal = parse_raft("prod")["seal"][0]['"awskms"']
        assert (unquote(seal["region"]), unquote(seal["kms_key_id"])) == ("eu-west-1", "alias/vault-prod-unseal")
        annotations = helm_values(spec_of("prod"))["server"]["serviceAccount"]["annotations"]
        assert annotations == {"eks.amazonaws.com/role-arn": "arn:aws:iam::222222222222:role/vault-prod-unseal"}

    def test_no_seal_without_auto_unseal(self) -> None:
        assert "seal" not in parse_raft("dev")
        assert "serviceAccount" not in helm_values(spec_of("dev"))["server"]

    def test_release_name_shapes_peer_addresses(self) -> None:
        config = raft_config(spec_of("staging", {"vault-platform:cluster.releaseName": "secrets"}))
        assert '"https://secrets-2.secrets-internal:8200"' in config
