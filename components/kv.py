"""The KV v2 secrets engine (``sys/mounts/secret``, ``secret/config``) and its static secrets
(``secret/data/:path``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_random as random
import pulumi_vault as vault

from components.mounts import MountSettings, engine_mount
from components.options import children_of, known_as, parented_to, suffixed
from environment import PROJECT, Kv, KvSecret


@dataclass(frozen=True)
class KvEngineArgs:
    """What :class:`KvEngine` declares."""

    kv: Kv
    """The stack's KV section: the mount, its settings and the static secrets."""
    mounts: MountSettings
    """What the stack states about every mount (fields logged in clear, protection)."""
    declares: Callable[[str | None], bool]
    """Whether this stack declares the secrets of an application (``None``: the platform's own);
    ``EnvironmentSpec.declares``."""


class KvEngine(pulumi.ComponentResource):
    """A versioned key-value mount; static values come from stack secrets or pulumi-random and
    are secrets from end to end (config, inputs, state, outputs)."""

    mount: pulumi.Output[str]
    """Mount path."""

    def __init__(self, name: str, args: KvEngineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vault-platform:kv:KvEngine", name, None, opts)
        child = children_of(self, opts)
        dependent = parented_to(self)
        kv = args.kv
        mount = engine_mount(f"{name}-mount", args.mounts, path=kv.mount, engine="kv", options={"version": "2"},
                             description="Static secrets, versioned.", opts=child)
        engine_config = vault.kv.SecretBackendV2(
            f"{name}-config",
            mount=mount.path,
            max_versions=kv.max_versions,
            cas_required=kv.cas_required,
            delete_version_after=kv.delete_version_after,
            opts=dependent,
        )
        config = pulumi.Config(PROJECT)
        for secret in kv.secrets:
            if args.declares(secret.owner):
                static_secret(f"{name}-{secret.name}", mount.path, secret, kv, config,
                              dependent.merge(pulumi.ResourceOptions(depends_on=[engine_config])))
        self.mount = mount.path
        self.register_outputs({"mount": self.mount})


def static_secret(name: str, mount: pulumi.Input[str], secret: KvSecret, kv: Kv, config: pulumi.Config,
                  opts: pulumi.ResourceOptions, formerly: Sequence[pulumi.Alias] = ()) -> vault.kv.SecretV2:
    """A static secret (``<mount>/data/<path>``): the platform's, or one an application's file declares,
    in the environment's stack or in its team's; ``formerly``, the names and parents it had before, keep
    it and its generated values (a replaced secret would be written anew with new values)."""
    return vault.kv.SecretV2(
        name,
        mount=mount,
        name=secret.path,
        data_json=_data_json(name, secret, config, opts, formerly),
        options=_check_and_set(secret) if kv.cas_required else None,
        # Never read back (terraform-provider-vault kvSecretV2Read: no call at all): neither CI role
        # needs to read a secret's values, a pull request's `preview --refresh` runs with the
        # read-only preview role, and the state keeps no copy of what Vault returns. The cost: a
        # value changed by hand in Vault is not seen as drift (README, "Changing a KV secret").
        disable_read=True,
        opts=known_as(formerly, opts),
    )


def _check_and_set(secret: KvSecret) -> dict[str, str]:
    """The write's ``options``: KV v2 reads the version only from ``options.cas`` (path_data.go of
    hashicorp/vault-plugin-secrets-kv, ``validateCheckAndSetOption``, decoded weakly, so a string
    is fine). The provider's own ``cas`` input is sent beside ``options`` at the top level of the
    write, where Vault never reads it (terraform-provider-vault ``kvSecretV2Write``; its issues 1727
    and 2472), and the ``options`` map is strings only (schema ``TypeMap``)."""
    return {"cas": str(secret.cas_version)}


def _data_json(name: str, secret: KvSecret, config: pulumi.Config, opts: pulumi.ResourceOptions,
               formerly: Sequence[pulumi.Alias]) -> pulumi.Output[str]:
    values: dict[str, pulumi.Output[str]] = {}
    for key, source in secret.values:
        if source.config_key is not None:
            values[key] = config.require_secret(source.config_key)
        else:
            generated = random.RandomPassword(
                f"{name}-{key}", length=source.random_length or 32, special=False,
                opts=known_as(suffixed(formerly, key), opts))
            values[key] = generated.result
    return pulumi.Output.secret(pulumi.Output.all(**values).apply(lambda data: json.dumps(data, sort_keys=True)))

