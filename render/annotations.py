"""Vault Agent injector annotations for an application's pod template.

The agent logs in with the pod's service account through the app's Kubernetes auth role, renders
each secret to ``/vault/secrets/<file>`` and keeps it fresh: KV values are re-read, database
credentials are renewed and replaced before their lease runs out, static database credentials
are re-read (Vault rotates them), and a certificate is issued again before it expires.

The annotation names and what the injector does with them are hashicorp/vault-k8s's
(``agent-inject/agent/annotations.go``, v1.7.6, the injector of chart 0.34.1):
``agent-revoke-on-shutdown`` makes the sidecar revoke its own token when the pod stops, which
revokes the token's leases with it (the pod's database user is dropped at once, not when its lease
would have run out); it applies to the sidecar only. ``agent-pre-populate-only`` injects the init
container alone, for pods that run to completion (Jobs): no sidecar is left running to keep the Job's
pod from finishing, and nothing renews or revokes: the credentials end with their lease or the token
(``tokenTtl``), whichever comes first.
"""

from __future__ import annotations

from environment import App, AppCertificate, Connection, EnvironmentSpec

PREFIX = "vault.hashicorp.com"
AGENT_TLS_PATH = "/vault/tls"
"""Where the injector mounts the ``tls-secret`` secret in the agent's containers (vault-k8s)."""


def injector_annotations(app: App, spec: EnvironmentSpec) -> dict[str, str]:
    """The annotations for ``app``'s pod template, in a stable order."""
    annotations = {
        f"{PREFIX}/agent-inject": "true",
        f"{PREFIX}/role": app.name,
        f"{PREFIX}/auth-path": f"auth/{spec.kubernetes_auth_path}",
    }
    if app.job:
        annotations[f"{PREFIX}/agent-pre-populate-only"] = "true"
    else:
        annotations[f"{PREFIX}/agent-revoke-on-shutdown"] = "true"
    # Without a CA secret (no TLS, or an external Vault whose certificate the system's roots verify) the
    # agent trusts the image's own roots.
    if spec.ca_secret_name is not None:
        annotations[f"{PREFIX}/tls-secret"] = spec.ca_secret_name
        annotations[f"{PREFIX}/ca-cert"] = f"{AGENT_TLS_PATH}/ca.crt"
    for path in app.kv_paths:
        api_path = f"{spec.kv.mount}/data/{path}"
        _add_file(annotations, f"{path.replace('/', '-')}.env", api_path, kv_template(api_path))
    if app.database_role is not None and spec.database is not None:
        api_path = f"{spec.database.mount}/creds/{app.database_role}"
        connection = spec.database.connection[spec.database.role[app.database_role].connection]
        _add_file(annotations, "db-creds.env", api_path, database_template(api_path, connection))
    if app.static_database_role is not None and spec.database is not None:
        api_path = f"{spec.database.mount}/static-creds/{app.static_database_role}"
        connection = spec.database.connection[spec.database.static_role[app.static_database_role].connection]
        _add_file(annotations, "db-static-creds.env", api_path, database_template(api_path, connection))
    if app.certificate is not None and spec.pki is not None:
        api_path = f"{spec.pki.intermediate.mount}/issue/{app.certificate.role}"
        for file, body in CERTIFICATE_FILES:
            _add_file(annotations, file, api_path, certificate_template(api_path, app.certificate, body))
    return annotations


# The certificate, its key and the CA chain, each in a file of its own. All three templates make the
# same request (same path, same arguments), which the agent makes once and shares between them, so
# the three files always hold one matching issuance. (``pkiCert`` is not used: the agent keys its
# request by destination file, which would give each file a certificate of its own.)
CERTIFICATE_FILES = (
    ("tls.crt", "{{ .Data.certificate }}\n"),
    ("tls.key", "{{ .Data.private_key }}\n"),
    ("ca.crt", "{{- range .Data.ca_chain }}\n{{ . }}\n{{- end }}\n"),
)


def certificate_template(api_path: str, certificate: AppCertificate, body: str) -> str:
    """One part of a certificate issued from ``api_path``; the agent issues a new one before this
    one expires and renders all three files again."""
    arguments = [f"common_name={certificate.common_name}", f"ttl={certificate.ttl}"]
    if certificate.alt_names:
        arguments.append(f"alt_names={','.join(certificate.alt_names)}")
    quoted = " ".join(f'"{argument}"' for argument in arguments)
    return f'{{{{- with secret "{api_path}" {quoted} -}}}}\n{body}{{{{- end }}}}\n'


def kv_template(api_path: str) -> str:
    """Every key of a KV v2 secret as ``KEY=value`` lines (the current version). Values are written as
    Vault returns them, unquoted: a file to read line by line, not to ``source`` in a shell, which would
    interpret a space, ``$``, ``&`` or a quote in a value (README, "For application teams")."""
    return (
        f'{{{{- with secret "{api_path}" -}}}}\n'
        "{{- range $key, $value := .Data.data }}\n"
        "{{ $key }}={{ $value }}\n"
        "{{- end }}\n"
        "{{- end }}\n"
    )


def database_template(api_path: str, connection: Connection) -> str:
    """libpq environment variables for fresh database credentials on ``connection``, unquoted like
    :func:`kv_template`'s (Vault's generated usernames and passwords hold no shell metacharacter, but
    the file follows one rule)."""
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
