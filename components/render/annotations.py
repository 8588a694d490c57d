"""Vault Agent injector annotations for an application's pod template.

The agent logs in with the pod's service account through the app's Kubernetes auth role, renders
each secret to ``/vault/secrets/<file>`` and keeps it fresh: KV values are re-read, database
credentials are renewed and replaced before their lease runs out.
"""

from __future__ import annotations

from components.spec import App, Connection, EnvironmentSpec

from .helm_values import TLS_MOUNT_PATH

PREFIX = "vault.hashicorp.com"


def injector_annotations(app: App, spec: EnvironmentSpec) -> dict[str, str]:
    """The annotations for ``app``'s pod template, in a stable order."""
    annotations = {
        f"{PREFIX}/agent-inject": "true",
        f"{PREFIX}/role": app.name,
        f"{PREFIX}/auth-path": f"auth/{spec.kubernetes_auth_path}",
    }
    if spec.cluster.tls.enabled:
        annotations[f"{PREFIX}/tls-secret"] = spec.cluster.tls.ca_secret_name
        annotations[f"{PREFIX}/ca-cert"] = f"{TLS_MOUNT_PATH}/ca.crt"
    for path in app.kv_paths:
        api_path = f"{spec.kv.mount}/data/{path}"
        _add_file(annotations, f"{path.replace('/', '-')}.env", api_path, kv_template(api_path))
    if app.database_role is not None and spec.database is not None:
        api_path = f"{spec.database.mount}/creds/{app.database_role}"
        connection = spec.database.connection[spec.database.role[app.database_role].connection]
        _add_file(annotations, "db-creds.env", api_path, database_template(api_path, connection))
    return annotations


def kv_template(api_path: str) -> str:
    """Every key of a KV v2 secret as ``KEY=value`` lines (the current version)."""
    return (
        f'{{{{- with secret "{api_path}" -}}}}\n'
        "{{- range $key, $value := .Data.data }}\n"
        "{{ $key }}={{ $value }}\n"
        "{{- end }}\n"
        "{{- end }}\n"
    )


def database_template(api_path: str, connection: Connection) -> str:
    """libpq environment variables for fresh database credentials on ``connection``."""
    return (
        f'{{{{- with secret "{api_path}" -}}}}\n'
        f"PGHOST={connection.host}\n"
        f"PGPORT={connection.port}\n"
        f"PGDATABASE={connection.database}\n"
        "PGUSER={{ .Data.username }}\n"
        "PGPASSWORD={{ .Data.password }}\n"
        "{{- end }}\n"
    )


def _add_file(annotations: dict[str, str], file: str, api_path: str, template: str) -> None:
    annotations[f"{PREFIX}/agent-inject-secret-{file}"] = api_path
    annotations[f"{PREFIX}/agent-inject-template-{file}"] = template
