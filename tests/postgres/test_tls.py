"""The connection URL and CA the program gives Vault, used against the session's PostgreSQL 15, which
serves a certificate for one name from a throwaway CA: verify-full connects to the right name and
refuses a wrong name or another CA; the modes refused outside dev accept any server.

libpq stands in for Vault's pgx here: hashicorp/vault ``sdk/database/helper/connutil/postgres.go``
(``configPostgresTLS``) implements libpq's modes (verify-full: the CA and the host name; verify-ca:
the CA only; require: no verification), and the provider's ``tls_ca``
(terraform-provider-vault ``resource_database_secret_backend_connection.go``, sent to Vault 1.18+)
is libpq's ``sslrootcert`` given as contents (hashicorp/vault#28024). The name is checked while
connecting to 127.0.0.1 through libpq's ``hostaddr``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from components.database import connection_url
from environment import Connection
from tests.postgres.conftest import TLS_HOST, World, make_world
from tests.postgres.server import PostgresServer, ServerTls
from tests.support import spec_of

C = "vault-platform:database.connections[0]"
WRONG_NAME = "other.vault-platform.test"


@pytest.fixture(scope="module")
def world(postgres: PostgresServer) -> Iterator[World]:
    """Only logs in: one world for the module."""
    spec = spec_of("prod")
    assert spec.database is not None
    yield from make_world(postgres, spec, spec.database.connections[0])


def declared_connection(postgres: PostgresServer, stack: str, **settings: Any) -> Connection:
    """The stack's connection pointed at the test server, with ``settings`` (config keys); in dev, an
    external server with its password in the stack secret ``devPostgresPassword``."""
    changes: dict[str, Any] = {f"{C}.host": TLS_HOST, f"{C}.port": postgres.port,
                               **{f"{C}.{key}": value for key, value in settings.items()}}
    secrets: dict[str, Any] = {}
    if stack == "dev":
        changes |= {f"{C}.inCluster": False, f"{C}.adminPassword": {"fromSecret": "devPostgresPassword"},
                    "vault-platform:devPostgresPassword": "placeholder"}
        secrets["secret_keys"] = {"vault-platform:devPostgresPassword", "vault:token"}
    spec = spec_of(stack, changes, **secrets)
    assert spec.database is not None
    return spec.database.connections[0]


def vault_connects(world: World, connection: Connection, tmp_path: Path, *, host: str = TLS_HOST,
                   ca: str | None = None) -> bool:
    """Connects the way Vault would with the declared URL and CA (``ca`` replaces the declared CA);
    whether the session is encrypted."""
    url = connection_url(connection).replace("{{username}}", world.admin_user).replace(
        "{{password}}", world.admin_password).replace(f"@{TLS_HOST}:", f"@{host}:")
    options: dict[str, Any] = {"hostaddr": "127.0.0.1", "connect_timeout": 10, "require_auth": "scram-sha-256"}
    root = ca if ca is not None else connection.tls_ca
    if root is not None:
        (tmp_path / "ca.crt").write_text(root)
        options["sslrootcert"] = str(tmp_path / "ca.crt")
    with psycopg.connect(url, **options) as session:
        [(encrypted,)] = session.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchall()
        assert isinstance(encrypted, bool)
        return encrypted


def test_verify_full_with_the_stacks_ca_connects_to_the_right_name(world: World, postgres: PostgresServer,
                                                                    tmp_path: Path) -> None:
    assert postgres.tls is not None
    connection = declared_connection(postgres, "prod", tlsCa=postgres.tls.ca_pem)
    assert connection.ssl_mode == "verify-full"
    assert vault_connects(world, connection, tmp_path) is True


def test_verify_full_refuses_a_wrong_name(world: World, postgres: PostgresServer, tmp_path: Path) -> None:
    assert postgres.tls is not None
    connection = declared_connection(postgres, "prod", tlsCa=postgres.tls.ca_pem)
    with pytest.raises(psycopg.OperationalError,
                       match=f'server certificate for "{TLS_HOST}" does not match host name "{WRONG_NAME}"'):
        vault_connects(world, connection, tmp_path, host=WRONG_NAME)


def test_verify_full_refuses_a_certificate_from_another_ca(world: World, postgres: PostgresServer,
                                                          tmp_path: Path) -> None:
    impostor = ServerTls.throwaway(TLS_HOST, ca_name="someone else's CA")
    connection = declared_connection(postgres, "prod", tlsCa=impostor.ca_pem)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        vault_connects(world, connection, tmp_path)


def test_verify_ca_checks_the_ca_but_not_the_name(world: World, postgres: PostgresServer, tmp_path: Path) -> None:
    """Why outside dev verify-ca needs the database's own CA: any certificate it signed passes."""
    assert postgres.tls is not None
    connection = declared_connection(postgres, "prod", sslMode="verify-ca", tlsCa=postgres.tls.ca_pem)
    assert vault_connects(world, connection, tmp_path, host=WRONG_NAME) is True
    impostor = ServerTls.throwaway(TLS_HOST, ca_name="someone else's CA")
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        vault_connects(world, connection, tmp_path, ca=impostor.ca_pem)


@pytest.mark.parametrize(("mode", "encrypted"), [("require", True), ("prefer", True), ("allow", False),
                                                 ("disable", False)])
def test_modes_refused_outside_dev_accept_any_server(world: World, postgres: PostgresServer, tmp_path: Path,
                                                     mode: str, encrypted: bool) -> None:
    """What prod refuses (and dev may use): any name, no CA, and perhaps no encryption at all."""
    connection = declared_connection(postgres, "dev", sslMode=mode)
    assert vault_connects(world, connection, tmp_path, host=WRONG_NAME) is encrypted
