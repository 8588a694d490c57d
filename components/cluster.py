"""The Vault servers and agent injector: namespace, TLS certificate and the official Helm chart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.options import children_of
from environment import Cluster
from render.helm_values import CHART, CHART_REPOSITORY, service_address

CERT_MANAGER_API = "cert-manager.io/v1"


@dataclass(frozen=True)
class VaultClusterArgs:
    """What :class:`VaultCluster` declares."""

    cluster: Cluster
    """The stack's cluster section: namespace, release, chart version, TLS."""
    protect: bool
    """Whether the namespace and the release are protected from deletion (``EnvironmentSpec.protect``)."""
    chart_values: Mapping[str, Any]
    """The chart's values (``render.helm_values.helm_values``)."""


class VaultCluster(pulumi.ComponentResource):
    """HA Vault with integrated Raft storage, as ``helm install vault hashicorp/vault`` would."""

    namespace: pulumi.Output[str]
    """The namespace Vault runs in."""
    release_name: pulumi.Output[str]
    """The Helm release's name."""
    release: k8s.helm.v3.Release
    """The Helm release: what the Vault configuration waits for (the servers are up)."""
    address: pulumi.Output[str]
    """Vault's in-cluster API address."""

    def __init__(self, name: str, args: VaultClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:cluster:VaultCluster", name, None, opts)
        cluster = args.cluster
        child = children_of(self, opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": cluster.namespace,
                "labels": {
                    # The chart's pods run as non-root without privilege: "baseline" admits them.
                    "pod-security.kubernetes.io/enforce": "baseline",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
            opts=child.merge(pulumi.ResourceOptions(protect=args.protect)),
        )
        depends_on: list[pulumi.Resource] = []
        if cluster.tls.enabled and cluster.tls.cert_manager_issuer is not None:
            depends_on.append(self._certificate(name, cluster, namespace, child))
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name=cluster.release_name,
            chart=CHART,
            version=cluster.chart_version,
            repository_opts={"repo": CHART_REPOSITORY},
            namespace=namespace.metadata["name"],
            values=dict(args.chart_values),
            # A failed upgrade must not be rolled back automatically: Raft peers may have moved on.
            atomic=False,
            cleanup_on_fail=False,
            max_history=10,
            timeout=900,
            opts=child.merge(pulumi.ResourceOptions(protect=args.protect, depends_on=depends_on)),
        )
        self.release = release
        self.namespace = namespace.metadata["name"]
        self.release_name = release.name.apply(lambda value: value or cluster.release_name)
        self.address = pulumi.Output.from_input(service_address(cluster))
        self.register_outputs({"namespace": self.namespace, "release_name": self.release_name,
                               "address": self.address})

    def _certificate(self, name: str, cluster: Cluster, namespace: k8s.core.v1.Namespace,
                     child: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
        """A cert-manager ``Certificate`` for every name a client or a Raft peer dials."""
        release, ns = cluster.release_name, cluster.namespace
        dns_names = [
            release, f"{release}.{ns}", f"{release}.{ns}.svc", f"{release}.{ns}.svc.cluster.local",
            f"{release}-active.{ns}.svc", f"*.{release}-internal", f"*.{release}-internal.{ns}.svc",
            *cluster.tls.extra_dns_names,
        ]
        return k8s.apiextensions.CustomResource(
            f"{name}-certificate",
            api_version=CERT_MANAGER_API,
            kind="Certificate",
            metadata={"name": cluster.tls.secret_name, "namespace": namespace.metadata["name"]},
            spec={
                "secretName": cluster.tls.secret_name,
                "issuerRef": {"kind": "ClusterIssuer", "name": cluster.tls.cert_manager_issuer},
                "commonName": f"{release}.{ns}.svc",
                "dnsNames": dns_names,
                "ipAddresses": ["127.0.0.1"],
                "duration": "2160h",
                "renewBefore": "720h",
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "usages": ["server auth", "client auth"],
            },
            opts=child,
        )
