"""The claims a GitHub Actions job's OIDC token must carry to log in with a role."""

from __future__ import annotations

from environment import CiRole, GithubActions


def bound_claims(github: GithubActions, role: CiRole) -> dict[str, str]:
    """Exact values of the job token's claims that ``role`` requires: the repository by name and by
    GitHub's ids of it and its owner (strings in the token, as GitHub's OIDC reference shows them),
    the GitHub Environment, and for the deploy role the ref (``refs/heads/main``). A workflow called
    from another (``workflow_call``) carries the caller's ref and its own job's environment."""
    claims = {"repository": github.repository, "repository_id": github.repository_id,
              "repository_owner_id": github.repository_owner_id, "environment": role.environment}
    if role.ref is not None:
        claims["ref"] = role.ref
    return claims
