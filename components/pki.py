"""The PKI secrets engine: a root CA mount (``sys/mounts/pki``) or an external root, an intermediate
CA mount (``sys/mounts/pki_int``) signed by it, their issuing/CRL/OCSP URLs and CRL settings
(``<mount>/config/urls``, ``<mount>/config/crl``), and the roles issuing leaf certificates
(``pki_int/roles/:name``)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_vault as vault

from components.mounts import MountSettings, engine_mount
from components.options import children_of, parented_to
from environment import CertificateAuthority, Pki

CRL_REBUILD_GRACE = "12h"


def hours(seconds: int) -> str:
    """A duration Vault's CRL settings parse: whole hours when it is whole hours, else seconds."""
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds}s"


def ca_urls(pki: Pki, mount: str) -> dict[str, list[str]]:
    """Where clients fetch a mount's CA certificate and CRL and ask OCSP (``<base>/v1/<mount>/...``)."""
    base = f"{pki.url_base}/v1/{mount}"
    return {"issuing_certificates": [f"{base}/ca"], "crl_distribution_points": [f"{base}/crl"],
            "ocsp_servers": [f"{base}/ocsp"]}


@dataclass(frozen=True)
class PkiEngineArgs:
    """What :class:`PkiEngine` declares."""

    pki: Pki
    """The stack's PKI section: the root (or the external one's certificate), the intermediate, the roles."""
    mounts: MountSettings
    """What the stack states about every mount (fields logged in clear, protection, of the CAs too)."""


class PkiEngine(pulumi.ComponentResource):
    """Short-lived leaf certificates from an intermediate CA; the root signs only the intermediate."""

    issuing_mount: pulumi.Output[str]
    """Mount path of the intermediate (issuing) CA."""
    csr: pulumi.Output[str]
    """The intermediate's certificate signing request (for an external root to sign)."""

    def __init__(self, name: str, args: PkiEngineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:pki:PkiEngine", name, None, opts)
        pki = args.pki
        child = children_of(self, opts)
        dependent = parented_to(self)
        # A CA's key and certificate live in its mount, and go only with it.
        def held_in(mount: str) -> pulumi.ResourceOptions:
            return dependent.merge(pulumi.ResourceOptions(protect=args.mounts.keeps(f"sys/mounts/{mount}")))

        signed_certificate: pulumi.Input[str] | None = pki.external_signed_certificate
        root_cert: vault.pkisecret.SecretBackendRootCert | None = None
        root_mount: vault.Mount | None = None
        if pki.root is not None:
            root_mount = self._mount(f"{name}-root-mount", args.mounts, pki.root,
                                     "Root CA: signs the intermediate only.", child)
            root_cert = vault.pkisecret.SecretBackendRootCert(
                f"{name}-root-cert",
                backend=root_mount.path,
                type="internal",  # the private key never leaves Vault
                common_name=pki.root.common_name,
                ttl=str(pki.root.ttl),
                key_type=pki.root.key_type,
                key_bits=pki.root.key_bits,
                exclude_cn_from_sans=True,
                issuer_name="root",
                opts=held_in(pki.root.mount),
            )
            self._settings(f"{name}-root", pki, pki.root.mount, root_mount, dependent)
        int_mount = self._mount(f"{name}-int-mount", args.mounts, pki.intermediate,
                                "Intermediate CA: issues leaf certificates.", child)
        request = vault.pkisecret.SecretBackendIntermediateCertRequest(
            f"{name}-int-csr",
            backend=int_mount.path,
            type="internal",
            common_name=pki.intermediate.common_name,
            key_type=pki.intermediate.key_type,
            key_bits=pki.intermediate.key_bits,
            opts=held_in(pki.intermediate.mount),
        )
        if root_mount is not None and root_cert is not None and pki.root is not None:
            root_mount_path = pki.root.mount
            signed = vault.pkisecret.SecretBackendRootSignIntermediate(
                f"{name}-int-signed",
                backend=root_mount.path,
                csr=request.csr,
                common_name=pki.intermediate.common_name,
                ttl=str(pki.intermediate.ttl),
                exclude_cn_from_sans=True,
                max_path_length=0,  # the intermediate signs leaf certificates, never another CA
                format="pem_bundle",
                opts=held_in(root_mount_path).merge(pulumi.ResourceOptions(depends_on=[root_cert])),
            )
            signed_certificate = signed.certificate_bundle  # the intermediate and the root
        issuing: list[pulumi.Resource] = []
        if signed_certificate is not None:
            issuing.append(vault.pkisecret.SecretBackendIntermediateSetSigned(
                f"{name}-int-set-signed",
                backend=int_mount.path,
                certificate=signed_certificate,
                opts=held_in(pki.intermediate.mount),
            ))
        else:
            pulumi.log.warn(
                f"PKI: the intermediate CA on {pki.intermediate.mount!r} is waiting for the external root to "
                "sign its CSR (stack output pkiIntermediateCsr). Put the signed certificate with its chain in "
                "pki.root.signedCertificate and run `pulumi up` again; until then it issues nothing.", self)
        issuing += self._settings(f"{name}-int", pki, pki.intermediate.mount, int_mount, dependent)
        for role in pki.roles:
            vault.pkisecret.SecretBackendRole(
                f"{name}-{role.name}",
                backend=int_mount.path,
                name=role.name,
                allowed_domains=list(role.allowed_domains),
                allow_subdomains=role.allow_subdomains,
                allow_bare_domains=role.allow_bare_domains,
                allow_glob_domains=False,
                allow_wildcard_certificates=False,
                allow_any_name=False,
                allow_localhost=False,
                allow_ip_sans=False,
                enforce_hostnames=True,
                server_flag=role.server_flag,
                client_flag=role.client_flag,
                key_type=role.key_type,
                key_bits=role.key_bits,
                ttl=str(role.ttl),
                max_ttl=str(role.max_ttl),
                require_cn=True,
                # Issued certificates are stored, so that they can be listed and revoked.
                no_store=False,
                opts=dependent.merge(pulumi.ResourceOptions(depends_on=issuing)),
            )
        self.issuing_mount = int_mount.path
        self.csr = request.csr
        self.register_outputs({"issuingMount": self.issuing_mount, "csr": self.csr})

    @staticmethod
    def _mount(name: str, mounts: MountSettings, authority: CertificateAuthority, description: str,
               opts: pulumi.ResourceOptions) -> vault.Mount:
        # Nothing issued here may outlive the CA certificate.
        return engine_mount(name, mounts, path=authority.mount, engine="pki", description=description,
                            max_lease_ttl_seconds=authority.ttl, opts=opts)

    @staticmethod
    def _settings(name: str, pki: Pki, mount_path: str, mount: vault.Mount,
                  opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        urls = ca_urls(pki, mount_path)
        return [
            vault.pkisecret.SecretBackendConfigUrls(
                f"{name}-urls",
                backend=mount.path,
                issuing_certificates=urls["issuing_certificates"],
                crl_distribution_points=urls["crl_distribution_points"],
                ocsp_servers=urls["ocsp_servers"],
                opts=opts,
            ),
            vault.pkisecret.SecretBackendCrlConfig(
                f"{name}-crl",
                backend=mount.path,
                expiry=hours(pki.crl_expiry),
                disable=False,
                ocsp_disable=False,
                auto_rebuild=True,
                auto_rebuild_grace_period=CRL_REBUILD_GRACE,
                opts=opts,
            ),
        ]
