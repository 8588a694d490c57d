"""What a stack needs outside the repository: what no ``pulumi up`` does for it, and what a pull
request therefore cannot show by itself. Three kinds:

- stack secrets the config references (``fromSecret``, ``vault:token``): set with
  ``pulumi config set --secret`` by someone who holds the value;
- database privileges the admin Vault connects as must hold (to grant them on, for each dynamic
  role's schemas, and the existing users of static roles): applied by the DBA from
  ``platformctl db-setup``; never for dev's in-cluster PostgreSQL, whose pod runs the same set-up
  itself on its first start (:class:`components.dev_postgres.DevPostgres`);
- the Vault CA secret in each application namespace, which the injected agent trusts Vault through
  when TLS is on (distributed by the platform team, e.g. with trust-manager; an external Vault's CA
  comes from its operator, and its snapshot job's namespace needs it too);
- the Raft snapshot bucket and the snapshot job's IAM role: ``platformctl bootstrap-state`` creates
  the bucket and prints the role's policy; the role is made with the account's IAM.

Pure: a stack's config and spec in, :class:`Needs` out; two of them in, what is new out."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from environment import EnvironmentSpec

from . import db_setup
from .stack_config import StackConfig


@dataclass(frozen=True)
class Needs:
    """Everything one stack needs outside the repository."""

    stack: str
    """Stack name."""
    secrets: tuple[str, ...]
    """Full config keys that must hold a secret, sorted (``vault-platform:postgresAdminPassword``)."""
    stored_secrets: frozenset[str]
    """Of :attr:`secrets`, those the stack file holds (``secure:`` values)."""
    grants: tuple[tuple[str, str, str], ...]
    """``(connection, schema, privilege)`` the dynamic roles grant, sorted."""
    static_users: tuple[tuple[str, str], ...]
    """``(connection, username)`` of the existing users static roles rotate, sorted."""
    ca_secret: str | None
    """Name of the CA secret the agents read, or ``None`` when there is none (Vault serves without TLS,
    or an external Vault's certificate is one the system's roots verify)."""
    ca_namespaces: tuple[str, ...]
    """Namespaces that need :attr:`ca_secret` (the applications', and an external Vault's snapshot job's),
    sorted; empty without one."""
    tls_source: tuple[str, str] | None = ("vault", "vault-tls")
    """``(namespace, secret)`` of Vault's own TLS secret, whose ``ca.crt`` the CA secret copies; ``None``
    for an external Vault, whose CA its operator hands over."""
    snapshot_bucket: tuple[str, str, str] | None = None
    """``(bucket, region, IAM role ARN)`` of the Raft snapshots, or ``None`` when the stack takes none."""


@dataclass(frozen=True)
class NewSecret:
    """A stack secret to set."""

    key: str
    """Full config key."""
    stored: bool
    """Already in the stack file as a ``secure:`` value."""
    did_you_mean: str | None
    """When not stored: a key of the stack's (or the base's) secrets that is spelled almost the same."""


@dataclass(frozen=True)
class Checklist:
    """What a stack needs outside the repository that ``since`` (a git ref) did not already need;
    everything it needs when ``since`` is ``None``."""

    stack: str
    """Stack name."""
    since: str | None
    """Git ref compared with, or ``None``."""
    secrets: tuple[NewSecret, ...]
    """Stack secrets to set."""
    grants: tuple[tuple[str, str, tuple[str, ...]], ...]
    """``(connection, schema, privileges)`` the DBA must make grantable, by schema."""
    static_users: tuple[tuple[str, str], ...]
    """``(connection, username)`` the DBA must create or hand to Vault's admin."""
    ca_secret: str | None
    """Name of the CA secret, when :attr:`ca_namespaces` is not empty."""
    ca_namespaces: tuple[str, ...]
    """Namespaces that need the CA secret."""
    tls_source: tuple[str, str] | None = ("vault", "vault-tls")
    """``(namespace, secret)`` of Vault's own TLS secret; ``None`` for an external Vault."""
    snapshot_bucket: tuple[str, str, str] | None = None
    """``(bucket, region, IAM role ARN)`` of the Raft snapshots, when new."""

    @property
    def empty(self) -> bool:
        return not (self.secrets or self.grants or self.static_users or self.ca_namespaces or self.snapshot_bucket)


def needs_of(stack: StackConfig, spec: EnvironmentSpec) -> Needs:
    """What ``stack`` (whose spec is ``spec``) needs outside the repository."""
    # What the DBA's scripts are made of (db_setup); dev's in-cluster PostgreSQL is set up by its own
    # pod: nothing for a DBA to do there.
    for_dba = [needs for needs in (db_setup.needs_of(spec.database) if spec.database else {}).values()
               if not needs.connection.in_cluster]
    grants = sorted({(needs.connection.name, schema, privilege) for needs in for_dba
                     for schema, privileges in needs.privileges.items() for privilege in privileges})
    static_users = sorted({(needs.connection.name, user) for needs in for_dba for user in needs.static_users})
    ca_secret = spec.ca_secret_name
    namespaces = {app.namespace for app in spec.apps}
    if spec.external is not None and spec.snapshots is not None:
        namespaces.add(spec.jobs_namespace)  # the snapshot job verifies the external Vault with it too
    return Needs(
        stack=stack.stack,
        secrets=tuple(sorted(stack.secret_keys)),
        stored_secrets=frozenset(stack.stored_secrets & stack.secret_keys),
        grants=tuple(grants),
        static_users=tuple(static_users),
        ca_secret=ca_secret,
        ca_namespaces=tuple(sorted(namespaces)) if ca_secret is not None else (),
        tls_source=(spec.cluster.namespace, spec.cluster.tls.secret_name) if spec.cluster is not None else None,
        snapshot_bucket=(spec.snapshots.bucket, spec.snapshots.region, spec.snapshots.role_arn)
        if spec.snapshots is not None else None,
    )


def checklist(head: Needs, base: Needs | None = None, since: str | None = None) -> Checklist:
    """What ``head`` needs that ``base`` (the same stack at ``since``) did not; all of ``head``
    without a base."""
    old_secrets = set(base.secrets) if base else set()
    known = sorted(head.stored_secrets | old_secrets)
    secrets = []
    for key in head.secrets:
        if key in old_secrets:
            continue
        stored = key in head.stored_secrets
        close = [] if stored else difflib.get_close_matches(key, [k for k in known if k != key], n=1, cutoff=0.85)
        secrets.append(NewSecret(key=key, stored=stored, did_you_mean=close[0] if close else None))
    old_grants = set(base.grants) if base else set()
    by_schema: dict[tuple[str, str], list[str]] = {}
    for connection, schema, privilege in head.grants:
        if (connection, schema, privilege) not in old_grants:
            by_schema.setdefault((connection, schema), []).append(privilege)
    old_namespaces = set(base.ca_namespaces) if base and base.ca_secret == head.ca_secret else set()
    namespaces = tuple(ns for ns in head.ca_namespaces if ns not in old_namespaces)
    return Checklist(
        stack=head.stack,
        since=since if base is not None else None,
        secrets=tuple(secrets),
        grants=tuple((connection, schema, tuple(privileges)) for (connection, schema), privileges in by_schema.items()),
        static_users=tuple(user for user in head.static_users if not base or user not in base.static_users),
        ca_secret=head.ca_secret if namespaces else None,
        ca_namespaces=namespaces,
        tls_source=head.tls_source,
        snapshot_bucket=head.snapshot_bucket if base is None or base.snapshot_bucket != head.snapshot_bucket
        else None,
    )


def secret_command(stack: str, key: str) -> str:
    """The command that sets stack secret ``key``; it prompts for the value, which thereby stays out of
    the shell's history (``pulumi config set`` prompts when the value is not on the command line)."""
    return f"pulumi config set --secret --stack {stack} {key}"


def db_setup_command(stack: str, since: str | None) -> str:
    """The command that prints the admin SQL the DBA applies (``--since``: only what changed)."""
    return f"venv/bin/python -m platformctl db-setup {stack}" + (f" --since {since}" if since else "")


def ca_commands(namespace: str, secret: str, tls_source: tuple[str, str] | None) -> list[str]:
    """One way to put the CA secret in ``namespace``: the ``ca.crt`` of Vault's own TLS secret, or the CA
    an external Vault's operator hands over (saved as ``ca.crt``)."""
    create = f"kubectl -n {namespace} create secret generic {secret} --from-file=ca.crt"
    if tls_source is None:
        return [create]
    source_namespace, source = tls_source
    return [f"kubectl -n {source_namespace} get secret {source} -o jsonpath='{{.data.ca\\.crt}}' | base64 -d > ca.crt",
            create]


def _items(check: Checklist, code: str) -> list[tuple[str, list[str]]]:
    """``(headline, commands)`` of each thing to do, with ``code`` wrapping names (backticks in
    Markdown, quotes in text)."""
    stack_file = f"stacks/Pulumi.{check.stack}.yaml"
    items: list[tuple[str, list[str]]] = []
    for secret in check.secrets:
        headline = f"Set stack secret {code}{secret.key}{code}"
        if secret.stored:
            headline += f" (already in {stack_file})"
        else:
            headline += f" (not in {stack_file} yet: set it before `pulumi up`"
            if secret.did_you_mean:
                headline += f", or fix the name: did you mean {code}{secret.did_you_mean}{code}?"
            headline += ")"
        items.append((headline, [] if secret.stored else [secret_command(check.stack, secret.key)]))
    if check.grants or check.static_users:
        what = [f"{', '.join(privileges)} on schema {code}{schema}{code} ({connection})"
                for connection, schema, privileges in check.grants]
        what += [f"existing user {code}{user}{code} for a static role ({connection})"
                 for connection, user in check.static_users]
        items.append((f"DBA: apply the admin set-up for {'; '.join(what)}",
                      [db_setup_command(check.stack, check.since)]))
    if check.ca_secret is not None:
        for namespace in check.ca_namespaces:
            source = "" if check.tls_source is not None else " (ca.crt: the CA the external Vault's operator gives)"
            items.append((f"Put the Vault CA secret {code}{check.ca_secret}{code} (key ca.crt) in namespace "
                          f"{code}{namespace}{code}{source}",
                          ca_commands(namespace, check.ca_secret, check.tls_source)))
    if check.snapshot_bucket is not None:
        bucket, region, role = check.snapshot_bucket
        items.append((f"Create the snapshot bucket {code}{bucket}{code} ({region}) and the snapshot job's IAM role "
                      f"{code}{role}{code} with the policy and trust conditions the command prints",
                      [bootstrap_command(check.stack)]))
    return items


def bootstrap_command(stack: str) -> str:
    """The command that creates (or re-applies) the stack's buckets, the snapshot bucket among them."""
    return (f"venv/bin/python -m platformctl bootstrap-state {stack} --bucket-prefix <state bucket prefix> "
            "--region <state region>")


def checklist_text(check: Checklist) -> list[str]:
    """The checklist as lines of the text plan."""
    since = f" that {check.since} did not" if check.since else ""
    if check.empty:
        return [f"Needs outside the repository{since}: nothing."]
    lines = [f"Needs outside the repository{since} (no `pulumi up` does these):"]
    for headline, commands in _items(check, "'"):
        lines.append(f"  [ ] {headline}")
        lines += [f"        {command}" for command in commands]
    return lines


def checklist_markdown(checks: list[Checklist]) -> str:
    """The checklist of every stack as the first section of the pull request comment."""
    lines = ["### Outside the repository", ""]
    todo = [check for check in checks if not check.empty]
    if not todo:
        lines.append("Nothing: no new stack secret, database grant, namespace needing the Vault CA or snapshot bucket.")
        return "\n".join(lines) + "\n"
    lines += ["What this change needs that no `pulumi up` does; check each off before deploying the stack.", ""]
    for check in todo:
        for headline, commands in _items(check, "`"):
            lines.append(f"- [ ] **{check.stack}**: {headline}")
            if commands:
                lines += ["", "  ```sh", *(f"  {command}" for command in commands), "  ```"]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
