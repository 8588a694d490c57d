"""Every Kubernetes object each stack declares, validated against the Kubernetes API's own schemas
(kubernetes-validate ships them per Kubernetes version, offline), strictly: an unknown or misspelt
field fails as the API server would refuse it.

Not validated here: the Helm release (the chart renders its objects; its values are validated
against the chart's schema in ``test_helm_values``) and custom resources, which have no schema in
the Kubernetes API: the PrometheusRule's rules go through ``promtool check rules`` (``tests/alerts``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest

from components.render.helm_values import helm_values
from components.render.snapshots import cron_job
from platformctl.engine import Declaration, DeclaredResource, unwrap
from tests.support import STACKS, declare_stack, spec_of

# The oldest Kubernetes minor the platform supports (EKS standard support) and the newest schema set.
KUBERNETES_VERSIONS = ("1.31.0", kubernetes_validate.latest_version())
NOT_BUILT_IN = {
    "kubernetes:helm.sh/v3:Release": "a Helm release: the chart's objects, not ours",
    "kubernetes:cert-manager.io/v1:Certificate": "a cert-manager custom resource",
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule": "a Prometheus operator custom resource",
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


def _validate(manifest: dict[str, Any]) -> None:
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(manifest, version, strict=True)


@pytest.mark.parametrize("stack", STACKS)
def test_every_object_of_the_configured_stack_validates(declared: dict[str, Declaration], stack: str) -> None:
    objects = list(manifests(declared[stack]))
    assert objects
    for resource, manifest in objects:
        try:
            _validate(manifest)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{stack}: {resource.name} ({resource.type}): {error.message} at {list(error.path)}")


@pytest.mark.parametrize("stack", STACKS)
def test_every_object_of_the_cluster_layer_validates(cluster_only: dict[str, Declaration], stack: str) -> None:
    for _, manifest in manifests(cluster_only[stack]):
        _validate(manifest)


@pytest.mark.parametrize("stack", STACKS)
def test_every_declared_kubernetes_type_is_validated_or_known_not_to_have_a_schema(
        declared: dict[str, Declaration], stack: str) -> None:
    validated = {resource.type for resource, _ in manifests(declared[stack])}
    kubernetes = {r.type for r in declared[stack].resources if r.custom and r.type.startswith("kubernetes:")}
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


@pytest.mark.parametrize("stack", STACKS)
def test_the_sidecar_handed_to_the_chart_validates_as_a_pod_container(stack: str) -> None:
    """The chart copies ``server.extraContainers`` into its StatefulSet as they are: checked as the
    containers of a pod with the volumes the chart gives the servers."""
    server = helm_values(spec_of(stack))["server"]
    volumes = [{"name": "audit", "persistentVolumeClaim": {"claimName": "audit-vault-0"}},
               *server.get("volumes", [])]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vault-0"},
           "spec": {"shareProcessNamespace": server["shareProcessNamespace"],
                    "containers": server["extraContainers"], "volumes": volumes}}
    _validate(pod)
