"""A small OIDC issuer over HTTPS on loopback: the discovery document and JWKS that Vault's JWT and
OIDC auth methods read when their config is written, and GitHub-shaped job tokens it signs (RS256)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.e2e.servers import HttpsFiles
from tests.postgres.server import ServerTls

KEY_ID = "e2e-issuer-key"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_segment(value: Mapping[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


class OidcIssuer:
    """Serves ``/.well-known/openid-configuration`` and ``/jwks`` at ``https://localhost:<port>``; its
    certificate comes from :attr:`tls`'s throwaway CA (``issuerCaPem`` / ``discoveryCaPem``)."""

    def __init__(self, directory: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.tls = ServerTls.throwaway("localhost", "vault-platform e2e issuer CA")
        numbers = self.key.public_key().public_numbers()
        jwks = {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": KEY_ID,
                          "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                          "e": b64url(numbers.e.to_bytes(3, "big"))}]}
        directory.mkdir(parents=True, exist_ok=True)
        self.server = HttpsFiles(self.tls, directory, {
            "/.well-known/openid-configuration": lambda _headers: (200, json.dumps(self.discovery()).encode()),
            "/jwks": json.dumps(jwks).encode(),
        })

    @property
    def url(self) -> str:
        return f"https://localhost:{self.server.port}"

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "jwks_uri": f"{self.url}/jwks", "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token", "response_types_supported": ["code", "id_token"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"]}

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def token(self, claims: Mapping[str, Any], lifetime: int = 300) -> str:
        """A signed JWT from this issuer with ``claims`` (``iss``, ``iat``, ``nbf`` and ``exp`` added unless given)."""
        now = int(time.time())
        body = {"iss": self.url, "iat": now, "nbf": now - 5, "exp": now + lifetime, **claims}
        signing_input = f"{jwt_segment({'alg': 'RS256', 'typ': 'JWT', 'kid': KEY_ID})}.{jwt_segment(body)}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"
