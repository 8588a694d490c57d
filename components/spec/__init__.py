"""The environment spec: stack config -> one validated, typed model (see :func:`load_spec`)."""

from ._reader import SpecError
from .durations import format_duration, parse_duration
from .loader import APP_POLICY_PREFIX, CAPABILITIES, PROJECT, load_spec
from .model import (
    App,
    AutoUnseal,
    Cluster,
    Connection,
    Database,
    DatabaseRole,
    EnvironmentSpec,
    Grant,
    Kv,
    KvSecret,
    Policy,
    PolicyRule,
    Resources,
    SecretValue,
    StaticRole,
    Tier,
    Tls,
    VaultAccess,
)

__all__ = [
    "APP_POLICY_PREFIX",
    "CAPABILITIES",
    "PROJECT",
    "App",
    "AutoUnseal",
    "Cluster",
    "Connection",
    "Database",
    "DatabaseRole",
    "EnvironmentSpec",
    "Grant",
    "Kv",
    "KvSecret",
    "Policy",
    "PolicyRule",
    "Resources",
    "SecretValue",
    "SpecError",
    "StaticRole",
    "Tier",
    "Tls",
    "VaultAccess",
    "format_duration",
    "load_spec",
    "parse_duration",
]
