"""Who logs in to Vault: the applications' pods (``kubernetesAuth``, with their service account
tokens), GitHub Actions jobs (``githubActions``, JWT auth with the job's OIDC token) and people
(``oidc``, the company's identity provider).

Called by :func:`environment.loader.load_spec`; every refusal is a :class:`SpecError` that
names the exact key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import cast

from vaultmodel import rules
from vaultmodel.durations import HOUR

from ._reader import AUDIENCE, VAULT_NAME, Name, Node, ca_pem, check_name, check_ttl_cap, check_ttl_order, declared
from .model import CiRole, CiRoleName, GithubActions, PeopleGroup, PeopleOidc, Policy

RESERVED_AUTH_PATHS = ("token",)
GITHUB_ACTIONS_PATH = "github-actions"
"""Mount path of the JWT auth method for GitHub Actions (``policies/acl/vault-iac.hcl`` names it)."""
PEOPLE_PATH = "oidc"
"""Mount path of the OIDC auth method for people (``policies/acl/vault-iac.hcl`` names it)."""
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
"""GitHub Actions' OIDC issuer: the ``iss`` of every job token, and where Vault finds the signing keys."""
MAIN_REF = "refs/heads/main"
"""The only ref a deploy runs for."""

DEPLOY_POLICY = "vault-iac"
PREVIEW_POLICY = "vault-preview"
ADMIN_POLICY = "platform-admin"
OPERATIONS_POLICY = "operations-readonly"
CI_POLICIES = (DEPLOY_POLICY, PREVIEW_POLICY)
"""Hand-written policies of CI's two roles (``policies/acl/``): never given to a person."""
PEOPLE_POLICIES = (ADMIN_POLICY, OPERATIONS_POLICY)
"""Hand-written policies a group may map to, besides the stack's declared ones."""

# A job's token lives exactly as long as the job may run (the workflows' timeout-minutes), and no
# renewal takes it further: a leaked token dies with the run.
DEPLOY_TOKEN_TTL = HOUR
PREVIEW_TOKEN_TTL = HOUR // 2
PEOPLE_TOKEN_TTL = HOUR
PEOPLE_TOKEN_MAX_TTL = 8 * HOUR

REPOSITORY = Name(re.compile(r"[A-Za-z0-9][-A-Za-z0-9]*/[-A-Za-z0-9._]+"), "owner/name of a GitHub "
                  "repository, e.g. acme/vault-platform", 140)
ENVIRONMENT = Name(re.compile(r"[A-Za-z0-9][-A-Za-z0-9._]*"), "a GitHub Environment name of letters, "
                   "digits, '-', '_' and '.'", 255)
GROUP = Name(re.compile(r"[A-Za-z0-9][-A-Za-z0-9._@]*"), "the group's name as the identity provider sends "
             "it: letters, digits, '-', '_', '.' and '@'", 128)
CLIENT_ID = Name(re.compile(r"[A-Za-z0-9][-A-Za-z0-9._~:@/]*"), "the OAuth client id the identity provider "
                 "gave Vault", 255)
CLAIM = Name(re.compile(r"[A-Za-z_][A-Za-z0-9_.:/-]*"), "a claim name such as email or groups", 128)
_URL = re.compile(r"(https?)://([a-z0-9]([-a-z0-9.]*[a-z0-9])?)(:\d{1,5})?(/[-A-Za-z0-9._~/%]*)?")
_LOOPBACK = ("localhost", "127.0.0.1")


def load_github_actions(node: Node, stack: str, policies: Mapping[str, Policy]) -> GithubActions:
    """The ``githubActions`` section: the repository, the audience and the two roles' environments."""
    repository = _exact(node, "repository", REPOSITORY, "repository")
    # Names can be taken over (a renamed or re-created repository, a renamed owner); the ids cannot.
    id_keys = ("repositoryId", "repositoryOwnerId")
    for key in id_keys:
        node.raw(key)  # both looked up first: one missing must not pass for a misspelling of the other
    repository_id, repository_owner_id = (str(node.integer(key, minimum=1)) for key in id_keys)
    audience = _exact(node, "audience", AUDIENCE, "aud", "write the audience the workflows request, e.g. "
                      f"vault-platform-{stack}")
    issuer = _issuer(node, "issuer", GITHUB_ISSUER, f"write GitHub's issuer, {GITHUB_ISSUER}, or your GitHub "
                     "Enterprise Server's, https://<host>/_services/token")
    issuer_ca_pem = ca_pem(node, "issuerCaPem", "the issuer's HTTPS certificate")
    deploy_environment = _exact(node, "deployEnvironment", ENVIRONMENT, "environment", default=stack)
    preview_environment = _exact(node, "previewEnvironment", ENVIRONMENT, "environment", default=f"{stack}-preview")
    if preview_environment == deploy_environment:
        raise node.error("previewEnvironment", f"is the deploy environment {deploy_environment!r}: a pull "
                         "request's preview would log in where only main deploys",
                         "use an environment of its own, e.g. " + f"{stack}-preview")
    extra = node.strings("previewPolicies", rule=VAULT_NAME)
    for index, name in enumerate(extra):
        if name in rules.READ_ONLY_POLICIES:
            continue  # hand-written, read-only: checked by the guardrails and the tests
        if name not in policies:
            raise node.error(f"previewPolicies[{index}]", f"policy {name!r} is not declared",
                             f"declare it under policies, or use {OPERATIONS_POLICY} ({declared(policies)})")
        if (problem := rules.read_only_problem(name, policies[name].rules)) is not None:
            raise node.error(f"previewPolicies[{index}]", f"policy {name!r} {problem}; a preview runs a pull "
                             "request's unmerged code", f"remove it: the preview role reads configuration only "
                             f"({PREVIEW_POLICY}, and {OPERATIONS_POLICY} if needed)")
    node.done()
    return GithubActions(
        path=GITHUB_ACTIONS_PATH, repository=repository, repository_id=repository_id,
        repository_owner_id=repository_owner_id, audience=audience, issuer=issuer, issuer_ca_pem=issuer_ca_pem,
        deploy=CiRole(name="deploy", environment=deploy_environment, ref=MAIN_REF, policies=(DEPLOY_POLICY,),
                      token_ttl=DEPLOY_TOKEN_TTL),
        preview=CiRole(name="preview", environment=preview_environment, ref=None,
                       policies=(PREVIEW_POLICY, *dict.fromkeys(extra)), token_ttl=PREVIEW_TOKEN_TTL),
    )


def load_people(node: Node, policies: Mapping[str, Policy], secret: Callable[[Node, str], str]) -> PeopleOidc:
    """The ``oidc`` section; ``secret(node, key)`` checks the ``{fromSecret: ...}`` at ``key`` and names
    the stack secret."""
    discovery_url = _issuer(node, "discoveryUrl", None, "write the identity provider's issuer, e.g. "
                            "https://login.example.com")
    uris = node.strings("allowedRedirectUris")
    if not uris:
        raise node.error("allowedRedirectUris", "is empty: Vault would refuse every login",
                         "list the UI's callback (https://<vault address>/ui/vault/auth/oidc/oidc/callback) "
                         "and the CLI's (http://localhost:8250/oidc/callback)")
    for index, uri in enumerate(uris):
        uri_match = _URL.fullmatch(uri)
        if uri_match is None or (uri_match.group(1) != "https" and uri_match.group(2) not in _LOOPBACK):
            raise node.error(f"allowedRedirectUris[{index}]", f"{uri!r} is not an https URL (or http on "
                             "localhost, the CLI's listener)", "write the exact callback URL, without '*'")
    groups: dict[str, PeopleGroup] = {}
    admin_group: str | None = None
    for item in node.children("groups"):
        group = _people_group(item, policies)
        if group.name in groups:
            raise item.error("name", f"a second group is named {group.name!r}", "list each group once")
        if ADMIN_POLICY in group.policies:
            if admin_group is not None:
                raise item.error("policies", f"{ADMIN_POLICY} is already the group {admin_group!r}'s: only the "
                                 "platform team's group gets it", f"remove {ADMIN_POLICY} here")
            admin_group = group.name
        groups[group.name] = group
        item.done()
    people = PeopleOidc(
        path=PEOPLE_PATH,
        discovery_url=discovery_url,
        discovery_ca_pem=ca_pem(node, "discoveryCaPem", "the identity provider's HTTPS certificate"),
        client_id=node.string("clientId", rule=CLIENT_ID),
        client_secret_key=secret(node, "clientSecret"),
        allowed_redirect_uris=tuple(dict.fromkeys(uris)),
        user_claim=node.string("userClaim", "email", rule=CLAIM),
        groups_claim=node.string("groupsClaim", "groups", rule=CLAIM),
        scopes=tuple(dict.fromkeys(node.strings("scopes", rule=CLAIM))),
        groups=tuple(sorted(groups.values(), key=lambda group: group.name)),
        token_ttl=node.duration("tokenTtl", PEOPLE_TOKEN_TTL),
        token_max_ttl=node.duration("tokenMaxTtl", PEOPLE_TOKEN_MAX_TTL),
    )
    check_ttl_cap(node, "tokenTtl", people.token_ttl, rules.TOKEN_TTL_CAP)
    check_ttl_cap(node, "tokenMaxTtl", people.token_max_ttl, rules.TOKEN_MAX_TTL_CAP)
    check_ttl_order(node, "tokenTtl", people.token_ttl, "tokenMaxTtl", people.token_max_ttl)
    node.done()
    return people


def _issuer(node: Node, key: str, default: str | None, fix: str) -> str:
    """An OIDC issuer URL, kept exactly as written: Vault requires the discovered issuer to be this very
    string (vault-plugin-auth-jwt, through go-oidc's discovery check)."""
    url = node.string(key, default)
    match = _URL.fullmatch(url)
    if match is None or match.group(1) != "https":
        raise node.error(key, f"{url!r} is not an https issuer URL", fix)
    return url


def _people_group(node: Node, policies: Mapping[str, Policy]) -> PeopleGroup:
    name = node.string("name", rule=GROUP)
    names = node.strings("policies", rule=VAULT_NAME)
    if not names:
        raise node.error("policies", "is empty", f"list the policies the group's members get, e.g. "
                         f"{OPERATIONS_POLICY}")
    for index, policy in enumerate(names):
        if policy in CI_POLICIES:
            raise node.error(f"policies[{index}]", f"{policy!r} is CI's own policy, never a person's",
                             f"use {ADMIN_POLICY} or {OPERATIONS_POLICY}")
        if policy not in policies and policy not in PEOPLE_POLICIES:
            raise node.error(f"policies[{index}]", f"policy {policy!r} is not declared",
                             f"declare it under policies, or use one of {', '.join(PEOPLE_POLICIES)} "
                             f"({declared(policies)})")
    return PeopleGroup(name=name, policies=tuple(dict.fromkeys(names)))


def _exact(node: Node, key: str, rule: Name, claim: str, fix: str | None = None, default: str | None = None) -> str:
    """A claim value the roles compare exactly, as a string (the rule the guardrails apply to the roles):
    a ``*`` is refused with its own message (it would match nothing, or anything if compared as a glob)."""
    if default is None and not node.has(key):
        raise node.error(key, "is required but not set", fix or f"set {node.path(key)!r}")
    value = node.string(key, default)
    if (problem := rules.jwt_claim_problem(claim, value)) is not None:
        raise node.error(key, f"{problem}: claims are matched exactly", f"write the exact {claim}")
    check_name(node, key, value, rule)
    return value


def ci_role(value: str | None) -> CiRoleName | None:
    """The role a run logs in with, as the workflow names it (``deploy`` or ``preview``), else ``None``."""
    if value in ("deploy", "preview"):
        return cast(CiRoleName, value)
    return None



def load_kubernetes_auth(auth: Node) -> tuple[str, str]:
    """The auth method's path and the audience of the cluster's service account tokens."""
    auth_path = auth.string("path", "kubernetes", rule=VAULT_NAME)
    if auth_path in RESERVED_AUTH_PATHS:
        raise auth.error("path", f"auth/{auth_path} is Vault's own", "choose another path, e.g. kubernetes",
                         edit="kubernetes")
    # Required: the audience of service account tokens differs between clusters (EKS, kind, ...),
    # and a wrong one makes every agent login fail.
    audience = auth.string("audience", rule=AUDIENCE)
    auth.done()
    return auth_path, audience
