"""PKI: a root (in Vault or external) signing an intermediate that issues short-lived leaf
certificates; applications issue from their role through the injected agent."""

from __future__ import annotations

from typing import Any

import pytest

from environment import PolicyRule, app_policy_rules
from platformctl.core.declaration import UNKNOWN_MARK, Declaration, unwrap
from platformctl.core.plan import plan_text
from render.annotations import injector_annotations
from tests.support import ANY_STACK, API_SERVICE, any_stack, declare_stack, edited, refusal, spec_of, spec_of_config

A = "vault.hashicorp.com"
PKI = "vault-platform:pki"
ROLE = f"{PKI}.roles[0]"
CERT = f"{API_SERVICE}certificate"
PROD_CERT = {"role": "payments-api", "commonName": "payments-api.production.svc",
             "altNames": ["payments-api.production.svc.cluster.local"]}
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def inputs(declaration: Declaration, name: str) -> dict[str, Any]:
    return dict(unwrap(declaration.named(name).inputs))


class TestDeclared:
    def test_mount_ttls_root_long_intermediate_shorter(self, declared: dict[str, Declaration]) -> None:
        prod = declared["prod"]
        assert inputs(prod, "vault-pki-root-mount") == {
            "path": "pki", "type": "pki", "maxLeaseTtlSeconds": 315360000,
            "description": "Root CA: signs the intermediate only."}
        assert inputs(prod, "vault-pki-int-mount")["maxLeaseTtlSeconds"] == 94608000
        assert declared["prod"].named("vault-pki-root-mount").protect

    @pytest.mark.parametrize("stack", ANY_STACK)
    def test_every_certificate_expires_before_its_issuer(self, stack: str) -> None:
        pki = spec_of_config(any_stack(stack)).pki
        assert pki is not None
        assert pki.root is not None
        assert all(role.ttl <= role.max_ttl < pki.intermediate.ttl < pki.root.ttl for role in pki.roles)

    def test_root_signs_the_intermediate(self, declared: dict[str, Declaration]) -> None:
        prod = declared["prod"]
        assert inputs(prod, "vault-pki-root-cert") == {
            "backend": "pki", "type": "internal", "commonName": "vault-platform prod root CA",
            "ttl": "315360000", "keyType": "ec", "keyBits": 384, "excludeCnFromSans": True, "issuerName": "root"}
        assert inputs(prod, "vault-pki-int-csr") == {
            "backend": "pki_int", "type": "internal", "commonName": "vault-platform prod intermediate CA",
            "keyType": "ec", "keyBits": 256}
        assert inputs(prod, "vault-pki-int-signed") == {
            "backend": "pki", "csr": UNKNOWN_MARK, "commonName": "vault-platform prod intermediate CA",
            "ttl": "94608000", "excludeCnFromSans": True, "maxPathLength": 0, "format": "pem_bundle"}
        assert inputs(prod, "vault-pki-int-set-signed") == {"backend": "pki_int", "certificate": UNKNOWN_MARK}

    @pytest.mark.parametrize("mount", ["pki", "pki_int"])
    def test_issuing_crl_and_ocsp_urls(self, declared: dict[str, Declaration], mount: str) -> None:
        name = "root" if mount == "pki" else "int"
        base = f"https://vault.vault.svc:8200/v1/{mount}"
        assert inputs(declared["prod"], f"vault-pki-{name}-urls") == {
            "backend": mount, "issuingCertificates": [f"{base}/ca"], "crlDistributionPoints": [f"{base}/crl"],
            "ocspServers": [f"{base}/ocsp"]}
        assert inputs(declared["prod"], f"vault-pki-{name}-crl") == {
            "backend": mount, "expiry": "72h", "disable": False, "ocspDisable": False, "autoRebuild": True,
            "autoRebuildGracePeriod": "12h"}

    def test_leaf_role(self, declared: dict[str, Declaration]) -> None:
        assert inputs(declared["prod"], "vault-pki-payments-api") == {
            "backend": "pki_int", "name": "payments-api",
            "allowedDomains": ["payments-api.production.svc", "payments-api.production.svc.cluster.local"],
            "allowSubdomains": False, "allowBareDomains": True, "allowGlobDomains": False,
            "allowWildcardCertificates": False, "allowAnyName": False, "allowLocalhost": False,
            "allowIpSans": False, "enforceHostnames": True, "serverFlag": True, "clientFlag": True,
            "keyType": "ec", "keyBits": 256, "ttl": "86400", "maxTtl": "259200", "requireCn": True,
            "noStore": False}

    def test_external_root_declares_the_csr_and_waits(self) -> None:
        declaration = declare_stack("prod", {f"{PKI}.root": {"external": True}})
        names = {r.name for r in declaration.resources}
        assert "vault-pki-int-csr" in names
        assert not names & {"vault-pki-root-mount", "vault-pki-root-cert", "vault-pki-int-signed",
                            "vault-pki-int-set-signed"}
        assert any("waiting for the external root" in warning for warning in declaration.warnings)
        # The CSR the external root signs is a stack output (known once Vault generates it).
        assert "pkiIntermediateCsr" in declaration.outputs

    def test_an_internal_root_exports_no_csr(self, declared: dict[str, Declaration]) -> None:
        assert "pkiIntermediateCsr" not in declared["prod"].outputs

    def test_external_root_with_the_signed_certificate(self) -> None:
        declaration = declare_stack("prod", {f"{PKI}.root": {"external": True, "signedCertificate": PEM}})
        assert inputs(declaration, "vault-pki-int-set-signed") == {"backend": "pki_int", "certificate": PEM}

    def test_the_plan_shows_the_ca(self, declared: dict[str, Declaration]) -> None:
        text = plan_text(declared["prod"], edited("prod"))
        assert "ocspServers: [https://vault.vault.svc:8200/v1/pki_int/ocsp]" in text
        assert "csr: [known after apply]" in text


class TestApplication:
    def test_policy_issues_from_its_role_only(self) -> None:
        spec = spec_of("prod", {CERT: PROD_CERT})
        rules = app_policy_rules(spec.apps[0], spec)
        assert [r for r in rules if r.path.startswith("pki")] == [
            PolicyRule("pki_int/issue/payments-api", ("update",))]

    def test_annotations_render_certificate_key_and_ca(self) -> None:
        spec = spec_of("prod", {CERT: {**PROD_CERT, "ttl": "12h"}})
        annotations = injector_annotations(spec.apps[0], spec)
        request = ('{{- with secret "pki_int/issue/payments-api" "common_name=payments-api.production.svc" '
                   '"ttl=43200" "alt_names=payments-api.production.svc.cluster.local" -}}\n')
        assert {k: v for k, v in annotations.items() if k.endswith((".crt", ".key"))} == {
            f"{A}/agent-inject-secret-tls.crt": "pki_int/issue/payments-api",
            f"{A}/agent-inject-template-tls.crt": request + "{{ .Data.certificate }}\n{{- end }}\n",
            f"{A}/agent-inject-secret-tls.key": "pki_int/issue/payments-api",
            f"{A}/agent-inject-template-tls.key": request + "{{ .Data.private_key }}\n{{- end }}\n",
            f"{A}/agent-inject-secret-ca.crt": "pki_int/issue/payments-api",
            f"{A}/agent-inject-template-ca.crt": request + "{{- range .Data.ca_chain }}\n{{ . }}\n{{- end }}\n"
                                                            "{{- end }}\n",
        }

    def test_subdomains_when_the_role_allows_them(self) -> None:
        spec = spec_of("prod", {f"{ROLE}.allowSubdomains": True,
                                CERT: {"role": "payments-api", "commonName": "a.b.payments-api.production.svc"}})
        assert spec.apps[0].certificate is not None
        assert spec.apps[0].certificate.common_name == "a.b.payments-api.production.svc"


@pytest.mark.parametrize(("changes", "key", "problem"), [
    ({f"{PKI}.intermediate.ttl": "87600h"}, "pki.intermediate.ttl", "is not shorter than pki.root.ttl"),
    ({f"{PKI}.intermediate.ttl": "90000h"}, "pki.intermediate.ttl", "cannot outlive the CA that signs it"),
    ({f"{ROLE}.maxTtl": "26280h"}, "pki.roles[0].maxTtl", "is not shorter than pki.intermediate.ttl"),
    ({f"{ROLE}.ttl": "96h"}, "pki.roles[0].ttl", "96h is above maxTtl (72h)"),
    ({f"{ROLE}.ttl": 0}, "pki.roles[0].ttl", "0 would fall back"),
    ({f"{ROLE}.keyBits": 4096}, "pki.roles[0].keyBits", "4096 is not a ec key size"),
    ({f"{PKI}.root.keyType": "dsa"}, "pki.root.keyType", "is not one of rsa, ec"),
    ({f"{ROLE}.allowedDomains": ["*.production.svc"]}, "pki.roles[0].allowedDomains[0]", "is not a valid name"),
    ({f"{ROLE}.allowedDomains": []}, "pki.roles[0].allowedDomains", "is empty"),
    ({f"{ROLE}.allowBareDomains": False}, "pki.roles[0].allowBareDomains", "no name can be issued"),
    ({f"{PKI}.urlBase": "http://vault.vault.svc:8200"}, "pki.urlBase", "plain http in prod"),
    ({f"{PKI}.urlBase": "vault:8200"}, "pki.urlBase", "is not a base URL"),
    ({f"{PKI}.intermediate.mount": "pki"}, "pki.intermediate.mount", "is the root CA's mount"),
    ({f"{PKI}.crlExpiry": "2h"}, "pki.crlExpiry", "leaves no room"),
    ({f"{PKI}.root": {"external": True, "signedCertificate": "not a pem"}}, "pki.root.signedCertificate",
     "is not a PEM certificate"),
    ({CERT: {**PROD_CERT, "role": "web"}}, f"{API_SERVICE}certificate.role", "PKI role 'web' is not declared"),
    ({PKI: None, CERT: PROD_CERT}, f"{API_SERVICE}certificate.role", "declared: none"),
    ({CERT: {**PROD_CERT, "commonName": "evil.example.com"}}, f"{API_SERVICE}certificate.commonName",
     "'evil.example.com' is not allowed by PKI role 'payments-api'"),
    ({CERT: {**PROD_CERT, "commonName": "x.payments-api.production.svc"}}, f"{API_SERVICE}certificate.commonName",
     "is not allowed"),
    ({CERT: {**PROD_CERT, "altNames": ["localhost"]}}, f"{API_SERVICE}certificate.altNames[0]", "is not allowed"),
    ({CERT: {**PROD_CERT, "ttl": "96h"}}, f"{API_SERVICE}certificate.ttl", "above role 'payments-api''s maxTtl"),
])
def test_refused(changes: dict[str, Any], key: str, problem: str) -> None:
    assert problem in str(refusal("prod", changes, key if key.startswith("apps/") else f"vault-platform:{key}"))
