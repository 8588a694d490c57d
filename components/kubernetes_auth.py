"""The Kubernetes auth method (``sys/auth/kubernetes``) and one role per application
(``auth/kubernetes/role/:name``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_vault as vault

from components.options import children_of, parented_to
from environment import App, ExternalVault, app_policy_name

KUBERNETES_HOST = "https://kubernetes.default.svc:443"


def _reviewer(external: ExternalVault | None) -> dict[str, Any]:
    """How Vault reaches the TokenReview API (``auth/<path>/config``). In the cluster: its own pod's
    token and CA. From outside it: the application cluster's API server, its CA, and the reviewer's
    JWT from the stack secret, never in plaintext. terraform-provider-vault v5.10.1,
    vault/resource_kubernetes_auth_backend_config.go: ``kubernetes_host`` (required),
    ``kubernetes_ca_cert``, ``token_reviewer_jwt`` (``Sensitive``; Vault never returns it on a read, so
    the provider keeps what it wrote) and ``disable_local_ca_jwt`` are written to ``auth/<path>/config``.
    """
    if external is None:
        # Vault reads its own pod's token and CA to call the TokenReview API.
        return {"kubernetes_host": KUBERNETES_HOST, "disable_local_ca_jwt": False}
    return {
        "kubernetes_host": external.kubernetes_host,
        "kubernetes_ca_cert": external.kubernetes_ca_cert,
        "token_reviewer_jwt": pulumi.Config().require_secret(external.token_reviewer_jwt_key),
        # Should Vault ever run in a pod of another cluster, its own token and CA are not this cluster's.
        "disable_local_ca_jwt": True,
    }


def app_role(name: str, backend: pulumi.Input[str], app: App,
             opts: pulumi.ResourceOptions) -> vault.kubernetes.AuthBackendRole:
    """An application's role (``auth/<path>/role/<app>``): exactly its service account in its
    namespace, its generated policy and the declared ones it names."""
    return vault.kubernetes.AuthBackendRole(
        name,
        backend=backend,
        role_name=app.name,
        bound_service_account_names=[app.service_account],
        bound_service_account_namespaces=[app.namespace],
        audience=app.audience,
        token_policies=[app_policy_name(app), *app.policies],
        token_ttl=app.token_ttl,
        token_max_ttl=app.token_max_ttl,
        token_type="service",
        opts=opts,
    )


@dataclass(frozen=True)
class KubernetesAuthArgs:
    """What :class:`KubernetesAuth` declares."""

    path: str
    """Mount path of the auth method (``kubernetesAuth.path``)."""
    apps: tuple[App, ...]
    """The applications whose roles this stack declares (``EnvironmentSpec.declared_apps``)."""
    external: ExternalVault | None
    """The Vault this stack configures but does not deploy (its token reviewer), or ``None`` when Vault
    runs in the cluster and reviews tokens with its own service account."""
    keeps: Callable[[str], bool]
    """Whether the auth method at a Vault path (``sys/auth/kubernetes``) is protected from deletion
    (``EnvironmentSpec.keeps``)."""


class KubernetesAuth(pulumi.ComponentResource):
    """Pods log in with their service account token; Vault reviews it with its own service account
    (it runs in the cluster) or, when it runs elsewhere, with the stack's token reviewer, and each role
    admits exactly one service account in one namespace."""

    path: pulumi.Output[str]
    """Mount path of the auth method."""

    def __init__(self, name: str, args: KubernetesAuthArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:auth:KubernetesAuth", name, None, opts)
        child = children_of(self, opts)
        dependent = parented_to(self)
        backend = vault.AuthBackend(
            f"{name}-backend",
            type="kubernetes",
            path=args.path,
            description="Pods log in with their service account token.",
            opts=child.merge(pulumi.ResourceOptions(protect=args.keeps(f"sys/auth/{args.path}"))),
        )
        config = vault.kubernetes.AuthBackendConfig(f"{name}-config", backend=backend.path,
                                                    **_reviewer(args.external), opts=dependent)
        for app in args.apps:
            app_role(f"{name}-{app.name}", backend.path, app,
                     dependent.merge(pulumi.ResourceOptions(depends_on=[config])))
        self.path = backend.path
        self.register_outputs({"path": self.path})
