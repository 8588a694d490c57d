"""Runs the guardrails pack's policies the way the Pulumi CLI's analyzer calls them, on resources
taken from the mock engine (``platformctl.adapters.engine``) or written out by a test."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.policy import _NotApplicableError

from platformctl.core.declaration import Declaration, DeclaredResource
from policies.guardrails.checks import POLICIES, policy


@dataclass(frozen=True)
class Violation:
    """One violation a policy reported."""

    policy: str
    """The policy's name."""
    resource: str
    """The resource's name ("" for a stack policy)."""
    message: str
    """What the policy said."""
    advisory: bool
    """Reported at the advisory level (shown, does not block)."""


def urn(stack: str, type_token: str, name: str) -> str:
    return f"urn:pulumi:{stack}::vault-platform::{type_token}::{name}"


def _options(protect: bool) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect=protect, ignore_changes=[], delete_before_replace=None, aliases=[],
                                 custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[])


def resource_args(type_token: str, props: Mapping[str, Any], *, stack: str = "prod", name: str = "subject",
                  protect: bool = False, tags: Mapping[str, str] | None = None,
                  config: Mapping[str, Any] | None = None) -> ResourceValidationArgs:
    """Arguments for a resource policy, as the analyzer builds them."""
    return ResourceValidationArgs(type_token, props, urn(stack, type_token, name), name, _options(protect), None,
                                  config, tags if tags is not None else {"owner": "platform-team",
                                                                         "environment": stack})


def declared_args(resource: DeclaredResource, tags: Mapping[str, str],
                  config: Mapping[str, Any] | None = None) -> ResourceValidationArgs:
    """Arguments for a resource policy from what the mock engine recorded."""
    return ResourceValidationArgs(resource.type, dict(resource.inputs), resource.urn, resource.name,
                                  _options(resource.protect), None, config, tags)


def reported(name: str, args: ResourceValidationArgs | StackValidationArgs) -> list[str]:
    """What policy ``name`` reports for ``args`` (a policy that calls ``args.not_applicable`` raises
    ``_NotApplicableError`` here; :func:`run_pack` treats it as the analyzer does)."""
    messages: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        messages.append(message)

    policy(name).validate(args, report)  # type: ignore[arg-type]  # the policy's own kind of args
    return messages


def not_applicable(name: str, args: ResourceValidationArgs | StackValidationArgs) -> str | None:
    """The reason policy ``name`` gives for not applying to ``args``, or ``None`` when it applies."""
    try:
        reported(name, args)
    except _NotApplicableError as skipped:
        return skipped.reason or ""
    return None


def _reported_if_applicable(name: str, args: ResourceValidationArgs | StackValidationArgs) -> list[str]:
    # The analyzer records a not-applicable policy as such, never as a violation.
    try:
        return reported(name, args)
    except _NotApplicableError:
        return []


def stack_args(declaration: Declaration, tags: Mapping[str, str],
               config: Mapping[str, Any] | None = None) -> StackValidationArgs:
    resources = [PolicyResource(r.type, dict(r.inputs), r.urn, r.name, _options(r.protect), None, None, [], {})
                 for r in declaration.resources if r.custom]
    return StackValidationArgs(resources, config, tags)


def run_pack(declaration: Declaration, tags: Mapping[str, str]) -> list[Violation]:
    """Every violation the whole pack reports for what ``declaration`` declares."""
    violations: list[Violation] = []
    for candidate in POLICIES:
        advisory = candidate.enforcement_level == EnforcementLevel.ADVISORY
        if isinstance(candidate, ResourceValidationPolicy):
            for resource in declaration.resources:
                if resource.custom:
                    violations += [Violation(candidate.name, resource.name, message, advisory)
                                   for message in _reported_if_applicable(candidate.name,
                                                                          declared_args(resource, tags))]
        else:
            violations += [Violation(candidate.name, "", message, advisory)
                           for message in _reported_if_applicable(candidate.name, stack_args(declaration, tags))]
    return violations
