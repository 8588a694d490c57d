"""How ``pulumi up`` reaches Vault: ``vault:token``, ``vault:address``, ``vault:caCertFile``,
``vaultCaPublic`` and ``clusterOnly``, and the role and token file a CI job names.

Called by :func:`environment.loader.load_spec`; every refusal is a :class:`SpecError` that names the key.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Set
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import identity
from ._reader import REMOVE, Node, SpecError, ca_problem
from .apps import PROJECT_ROOT
from .model import GithubActions, JwtLogin, Tier, VaultAccess
from .stack_keys import PROJECT

LOGIN_KEYS = ("vault:token",)
"""Config keys that each configure how ``pulumi up`` logs in to Vault; a stack with none of them (and
no ``githubActions`` login with a ``vault:address``) declares only the cluster layer, which it must say
(``clusterOnly``)."""
CI_ROLE_VARIABLE = "VAULT_PLATFORM_CI_ROLE"
"""Environment variable in which a workflow names the role its job logs in with (deploy, preview)."""
TOKEN_FILE_VARIABLE = "TERRAFORM_VAULT_TOKEN_FILENAME"
"""Environment variable naming the file that holds the CI job's Vault token: the Vault provider's own
for its token-file login (terraform-provider-vault, internal/consts/consts.go ``EnvVarTokenFilename``)."""


def project_file(path: str) -> Path:
    """``path`` as the program and the Vault provider open it: relative to :data:`PROJECT_ROOT`."""
    return PROJECT_ROOT / path


def load_cluster_only(root: Node) -> bool:
    """``clusterOnly``: true on a new environment's first ``up`` only."""
    return root.flag("clusterOnly", "write true (a new environment's first `up` only) or remove the key")


def load_vault_access(stack: str, config: Mapping[str, Any], secret_keys: Set[str], *, cluster_only: bool,
                      github: GithubActions | None, ci_role: str | None, ci_token_file: str | None, tier: Tier,
                      ca_public: bool, external: bool = False) -> VaultAccess | None:
    """How ``pulumi up`` reaches Vault, or ``None`` for a stack that says it is cluster-only: the token
    in ``vault:token`` when set (the bootstrap run, break-glass), else the CI job's OIDC token through
    the ``githubActions`` login once ``vault:address`` is set.

    Without a login the program can declare only the cluster layer, and ``pulumi up`` would then
    delete everything the configuration layer declared before: a missing login is refused unless
    the stack states ``clusterOnly`` (a new environment's first ``up``, before Vault is initialized).
    """
    logins = [key for key in LOGIN_KEYS if config.get(key) is not None]
    if cluster_only:
        if logins:
            raise SpecError(stack, f"{PROJECT}:clusterOnly", f"is true, but {logins[0]} is set: a stack that "
                            "logs in to Vault declares the configuration layer too",
                            f"remove {PROJECT}:clusterOnly once Vault is initialized, or remove {logins[0]}",
                            edits=((f"{PROJECT}:clusterOnly", REMOVE),))
        return None
    # CI's login: its OIDC token, once the stack names the address (clusterOnly, above, overrides it).
    jwt = not logins and github is not None and config.get("vault:address") is not None
    if jwt:
        logins = ["vault:address"]
    if not logins and external:  # no cluster layer to fall back on: the stack configures Vault or nothing
        raise SpecError(stack, LOGIN_KEYS[0], "is not set, and no other Vault login (githubActions with "
                        "vault:address) is configured: the program cannot configure the external Vault",
                        "set vault:address and declare githubActions (CI's login), or, for a run by hand, run "
                        f"`pulumi config set --secret {LOGIN_KEYS[0]} <token>`")
    if not logins:
        raise SpecError(stack, LOGIN_KEYS[0], "is not set, and no other Vault login (githubActions with "
                        "vault:address) is configured: the "
                        "program would declare only the cluster layer, and `pulumi up` would delete the auth "
                        "methods, policies, secrets engines and audit devices it declared before",
                        f"run `pulumi config set --secret {LOGIN_KEYS[0]} <token>` (README, 'Bringing up a new "
                        f"environment'); only for a new environment's first `up`, before Vault is initialized, "
                        f"set {PROJECT}:clusterOnly to true instead")
    token_key = "vault:token"
    if not jwt and token_key not in secret_keys:
        raise SpecError(stack, token_key, "holds a plaintext value where a secret is required",
                        f"run `pulumi config set --secret {token_key} <token>`")
    address = config.get("vault:address")
    if not isinstance(address, str) or not re.fullmatch(r"https?://[^\s/]+(:\d+)?/?", address):
        raise SpecError(stack, "vault:address", f"{address!r} is not a Vault address" if address else
                        "is required once vault:token is set", "run `pulumi config set vault:address "
                        "https://<host>:8200`")
    ca_cert_file = _vault_ca(stack, config.get("vault:caCertFile"), urlsplit(address).scheme, tier, ca_public)
    if not jwt:
        return VaultAccess(address=address, token_key=token_key, ca_cert_file=ca_cert_file)
    assert github is not None
    if urlsplit(address).scheme == "http" and not _loopback(urlsplit(address).hostname or ""):
        raise SpecError(stack, "vault:address", f"{address!r} is plain http to another machine: the CI job's "
                        "login would send its OIDC token, and get its Vault token back, in clear",
                        "serve Vault with TLS (cluster.tls) and write its https address, with vault:caCertFile "
                        "(README, \"Vault's CA\"); plain http only to a loopback address (a port-forward)")
    role = identity.ci_role(ci_role or "deploy")
    if role is None:
        raise SpecError(stack, CI_ROLE_VARIABLE, f"{ci_role!r} is not a role of the GitHub Actions login",
                        "set it to deploy (pulumi up on main) or preview (a pull request's preview)")
    if ci_token_file is not None and not Path(ci_token_file).is_file():
        raise SpecError(stack, TOKEN_FILE_VARIABLE, f"{ci_token_file!r} is not a file",
                        f"write the job's Vault token there first (`platformctl vault-login {stack} > <file>`), "
                        f"or unset {TOKEN_FILE_VARIABLE} to log in with TERRAFORM_VAULT_AUTH_JWT")
    return VaultAccess(address=address, token_key=None, ca_cert_file=ca_cert_file,
                       jwt_login=JwtLogin(mount=github.path, role=role, token_file=ci_token_file))


def _loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address (127.0.0.0/8, ::1): traffic that never leaves the machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _vault_ca(stack: str, ca_cert_file: object, scheme: str, tier: Tier, ca_public: bool) -> str | None:
    """``vault:caCertFile``: a file of the repository holding the CA certificate(s) that verify Vault's,
    which the provider, ``platformctl vault-login`` and ``platformctl rollout`` all use. Outside dev an
    https address needs one, unless the stack states that Vault's certificate chains to a public CA
    (``vaultCaPublic``): the servers' certificate comes from the private ``platform-ca``, which no
    runner's trust store holds."""
    key, public_key = "vault:caCertFile", f"{PROJECT}:vaultCaPublic"
    fix = (f"commit the CA's PEM as stacks/ca/{stack}.pem and run `pulumi config set {key} stacks/ca/{stack}.pem` "
           "(README, \"Vault's CA\")")
    if ca_cert_file is None:
        if scheme == "https" and tier != "dev" and not ca_public:
            raise SpecError(stack, key, "is not set: Vault's certificate comes from the private platform-ca, "
                            "which the provider, vault-login and rollout would look for in the machine's trust store",
                            f"{fix}; or set {public_key} to true if Vault's certificate chains to a public CA")
        return None
    if ca_public:
        raise SpecError(stack, public_key, f"is true, but {key} names a CA file", "remove one of the two",
                        edits=((public_key, REMOVE),))
    if not isinstance(ca_cert_file, str) or not ca_cert_file:
        raise SpecError(stack, key, f"expected a file path, got {ca_cert_file!r}", fix)
    path = project_file(ca_cert_file)
    if not path.is_file():
        raise SpecError(stack, key, f"{ca_cert_file!r} is not a file (a relative path starts where Pulumi.yaml "
                        "is)", fix)
    if (problem := ca_problem(path.read_text(errors="replace"))) is not None:
        raise SpecError(stack, key, f"{ca_cert_file!r} {problem}", fix)
    return ca_cert_file
