"""Every Kubernetes object each stack declares, validated against the Kubernetes API's own schemas
(kubernetes-validate ships them per Kubernetes version, offline), strictly: an unknown or misspelt
field fails as the API server would refuse it.

Custom resources are validated against their CustomResourceDefinitions' schemas, vendored unchanged
in ``tests/reference/`` (cert-manager's Certificate, the Prometheus operator's PrometheusRule), with
unknown fields refused as ``kubectl``'s strict field validation does; the PrometheusRule's rules also
go through ``promtool check rules`` (``test_alerts``). Not validated here: the Helm release (the chart
renders its objects; its values are validated against the chart's schema in ``test_helm_values``).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from platformctl.core.declaration import Declaration, DeclaredResource, unwrap
from render.helm_values import helm_values
from render.snapshots import cron_job
from tests.support import (
    ANY_STACK,
    STACKS,
    any_stack,
    declare_config,
    declare_stack,
    deployed_cluster,
    spec_of,
    spec_of_config,
)

# The oldest Kubernetes minor the platform supports (EKS standard support) and the newest schema set.
KUBERNETES_VERSIONS = ("1.31.0", kubernetes_validate.latest_version())
REFERENCE = Path(__file__).resolve().parent / "reference"
CUSTOM_RESOURCES = {
    "kubernetes:cert-manager.io/v1:Certificate": REFERENCE / "cert-manager" / "cert-manager.io_certificates.yaml",
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule":
        REFERENCE / "prometheus-operator" / "monitoring.coreos.com_prometheusrules.yaml",
}
NOT_BUILT_IN = {
    "kubernetes:helm.sh/v3:Release": "a Helm release: the chart's objects, not ours",
    **{type_token: "a custom resource, validated against its CRD" for type_token in CUSTOM_RESOURCES},
}


def manifests(declaration: Declaration) -> Iterator[tuple[DeclaredResource, dict[str, Any]]]:
    """The declared Kubernetes objects as the API server gets them."""
    for resource in declaration.resources:
        if resource.custom and resource.type.startswith("kubernetes:") and resource.type not in NOT_BUILT_IN:
            yield resource, _integral(unwrap(resource.inputs))


def _integral(value: Any) -> Any:
    """Pulumi's wire format carries every number as a double; the provider sends whole ones as
    integers, which is what the API's ``integer`` fields take."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


@pytest.fixture(scope="module")
def cluster_only() -> dict[str, Declaration]:
    """What each stack declares before Vault is initialized (the first ``pulumi up``)."""
    return {stack: declare_stack(stack, configured=False) for stack in STACKS}


@functools.cache
def crd_schema(type_token: str) -> dict[str, Any]:
    """The CRD's schema of the resource's version, strict: an object schema that lists its
    properties takes no others (the API server prunes them; ``kubectl`` refuses them)."""
    document = yaml.safe_load(CUSTOM_RESOURCES[type_token].read_text())
    version = type_token.split(":")[1].rsplit("/", 1)[1]
    (schema,) = [v["schema"]["openAPIV3Schema"] for v in document["spec"]["versions"] if v["name"] == version]
    strict: dict[str, Any] = _strict(schema)
    return strict


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema and not schema.get(
            "x-kubernetes-preserve-unknown-fields"):
        strict["additionalProperties"] = False
    return strict


def custom_resources(declaration: Declaration) -> Iterator[tuple[DeclaredResource, dict[str, Any]]]:
    for resource in declaration.resources:
        if resource.type in CUSTOM_RESOURCES:
            yield resource, _integral(unwrap(resource.inputs))


@pytest.mark.parametrize("stack", ANY_STACK)
def test_every_custom_resource_validates_against_its_crd(any_declared: dict[str, Declaration], stack: str) -> None:
    for resource, manifest in custom_resources(any_declared[stack]):
        jsonschema.Draft7Validator(crd_schema(resource.type)).validate(manifest)


def test_staging_and_prod_declare_both_custom_resources(declared: dict[str, Declaration]) -> None:
    for stack in ("staging", "prod"):
        assert {resource.type for resource, _ in custom_resources(declared[stack])} == set(CUSTOM_RESOURCES)


@pytest.mark.parametrize(("type_token", "path", "value"), [
    ("kubernetes:cert-manager.io/v1:Certificate", ("spec", "privateKey", "algorithm"), "DSA"),   # not an enum value
    ("kubernetes:cert-manager.io/v1:Certificate", ("spec", "dnsName"), ["x"]),                    # unknown field
    ("kubernetes:monitoring.coreos.com/v1:PrometheusRule", ("spec", "groups", 0, "rules", 0, "for"), "5 minutes"),
])
def test_the_crd_check_can_fail(declared: dict[str, Declaration], type_token: str, path: tuple[Any, ...],
                                value: Any) -> None:
    (manifest,) = [m for r, m in custom_resources(declared["prod"]) if r.type == type_token]
    node = manifest
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(crd_schema(type_token)).validate(manifest)


def _validate(manifest: dict[str, Any]) -> None:
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(manifest, version, strict=True)


@pytest.mark.parametrize("stack", ANY_STACK)
def test_every_object_of_the_configured_stack_validates(any_declared: dict[str, Declaration], stack: str) -> None:
    objects = list(manifests(any_declared[stack]))
    assert objects
    for resource, manifest in objects:
        try:
            _validate(manifest)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{stack}: {resource.name} ({resource.type}): {error.message} at {list(error.path)}")


@pytest.mark.parametrize("stack", ANY_STACK)
def test_every_object_of_the_cluster_layer_validates(stack: str) -> None:
    for _, manifest in manifests(declare_config(any_stack(stack, configured=False))):
        _validate(manifest)


@pytest.mark.parametrize("stack", ANY_STACK)
def test_every_declared_kubernetes_type_is_validated_or_known_not_to_have_a_schema(
        any_declared: dict[str, Declaration], stack: str) -> None:
    validated = {resource.type for resource, _ in manifests(any_declared[stack])}
    kubernetes = {r.type for r in any_declared[stack].resources if r.custom and r.type.startswith("kubernetes:")}
    assert kubernetes - validated <= set(NOT_BUILT_IN)


def test_staging_and_prod_declare_the_snapshot_cronjob(declared: dict[str, Declaration]) -> None:
    for stack in ("staging", "prod"):
        kinds = {manifest["kind"] for _, manifest in manifests(declared[stack])}
        assert {"CronJob", "ServiceAccount", "Namespace"} <= kinds


@pytest.mark.parametrize(("path", "value"), [
    (("spec", "suspend"), "no"),                                                  # not a boolean
    (("spec", "jobTemplate", "spec", "backoffLimit"), "two"),                     # not an integer
    (("spec", "jobTemplate", "spec", "template", "spec", "restartPolicyy"), "Never"),  # unknown field
])
def test_the_schema_check_can_fail(path: tuple[str, ...], value: Any) -> None:
    manifest = copy.deepcopy(cron_job(spec_of("prod")))
    node = manifest
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(manifest)


@pytest.mark.parametrize("stack", ANY_STACK)
def test_the_sidecar_handed_to_the_chart_validates_as_a_pod_container(stack: str) -> None:
    """The chart copies ``server.extraContainers`` into its StatefulSet as they are: checked as the
    containers of a pod with the volumes the chart gives the servers."""
    deployed_cluster(stack)
    server = helm_values(spec_of_config(any_stack(stack)))["server"]
    volumes = [{"name": "audit", "persistentVolumeClaim": {"claimName": "audit-vault-0"}},
               *server.get("volumes", [])]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vault-0"},
           "spec": {"shareProcessNamespace": server["shareProcessNamespace"],
                    "containers": server["extraContainers"], "volumes": volumes}}
    _validate(pod)
