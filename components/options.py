"""Resource options every component gives its children."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi


def children_of(component: pulumi.ComponentResource, opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    """Options for ``component``'s children: parented to it, and waiting for what it waits for.

    Pulumi does not hand a component's ``depends_on`` down to its children, so without this the
    Vault configuration would not wait for the Helm release, nor the secrets engines for the audit
    devices.
    """
    return pulumi.ResourceOptions(parent=component, depends_on=opts.depends_on if opts is not None else None)


def parented_to(component: pulumi.ComponentResource) -> pulumi.ResourceOptions:
    """Options for a child that takes an input from a sibling declared with :func:`children_of`
    (a mount's path, a backend's path): it waits through that input, so an explicit ``depends_on``
    would only repeat the wait, at the SDK's cost of resolving it once more per resource."""
    return pulumi.ResourceOptions(parent=component)


def known_as(aliases: Sequence[pulumi.Alias], opts: pulumi.ResourceOptions) -> pulumi.ResourceOptions:
    """``opts`` for a resource once declared under other names or parents (``aliases``): each alias keeps
    its identity, so the rename neither deletes nor creates it."""
    return opts.merge(pulumi.ResourceOptions(aliases=list(aliases))) if aliases else opts


def suffixed(aliases: Sequence[pulumi.Alias], suffix: str) -> list[pulumi.Alias]:
    """The aliases of a resource named after another (``<its name>-<suffix>``, under the same parent),
    from the other's ``aliases``."""
    return [pulumi.Alias(name=f"{alias.name}-{suffix}", parent=alias.parent) for alias in aliases]
