"""Reads the running stack's config from the Pulumi runtime, and the applications from their files,
into :func:`load_spec`."""

from __future__ import annotations

import json
import os
from contextvars import ContextVar
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from .apps import Apps, read_apps
from .loader import load_spec
from .model import EnvironmentSpec
from .policies import load_policy_files
from .vault_access import CI_ROLE_VARIABLE, TOKEN_FILE_VARIABLE

GIVEN_APPS: ContextVar[Apps | None] = ContextVar("given_apps", default=None)
"""The application files a run of the program under the mock engine is given (``platformctl.adapters.engine``),
as the engine gives it the stack config; under the CLI the program reads them itself."""


def load_stack_spec() -> EnvironmentSpec:
    """The spec of the stack being deployed; raises :class:`SpecError` on bad input."""
    # The CLI hands config over in the environment; the automation API and the mock engine set it
    # in the runtime. Structured values arrive as JSON text.
    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    config = {key: _decode(value) for key, value in raw.items()}
    secret_keys = {key for key in config if runtime_config.is_config_secret(key)}
    secret_keys |= set(runtime_config.get_config_secret_keys_env())
    reserved = [document.name for document in load_policy_files()]
    apps = GIVEN_APPS.get()
    # A CI job names the role it logs in with, and the file of the Vault token it logged in for; neither
    # the JWT nor that token passes through the program: the provider reads them itself.
    return load_spec(pulumi.get_stack(), config, secret_keys, reserved, apps=read_apps() if apps is None else apps,
                     ci_role=os.environ.get(CI_ROLE_VARIABLE), ci_token_file=os.environ.get(TOKEN_FILE_VARIABLE))


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
