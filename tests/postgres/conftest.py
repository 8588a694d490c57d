"""One PostgreSQL server for the whole session (started here, stopped even when tests fail; it also
serves TLS with a throwaway CA), and per test a fresh database laid out the way the migrations and
the DBA leave it: a table-owner role owning the tables of every granted schema, and the admin Vault
connects as, set up with exactly what ``platformctl db-setup`` prints, in each admin setup
(``functions`` and ``createrole``)."""

from __future__ import annotations

import atexit
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from environment import AdminSetup, Connection, DatabaseRole, EnvironmentSpec
from render import sql as vault_sql
from render.admin_setup import SCHEMA, ConnectionNeeds, grantee, setup_statements
from tests.postgres import vault_plugin
from tests.postgres.server import PostgresServer, ServerTls
from tests.support import ANY_STACK, COMMITTED, any_stack, spec_of_config

TABLE_OWNER = "app_owner"
UNGRANTED_SCHEMA = "private"
DISPLAY_NAME = "kubernetes-api-service"
SEEDED_EMAILS = ("ada@example.com", "grace@example.com")
SETUPS: tuple[AdminSetup, ...] = ("functions", "createrole")
TLS_HOST = "db.vault-platform.test"  # the name the session server's certificate carries


def declared_roles() -> list[Any]:
    """One test case per distinct dynamic role across the committed stacks and their copies with an
    application onboarded (see ``tests.support.ANY_STACK``) in the default functions setup, and per
    distinct role of the committed stacks in the createrole setup.

    Stacks whose role runs the very same SQL (its creation statements, as the same admin in the same
    database) share one case, named after all of them, e.g. ``dev+staging+prod-api-role-functions``:
    the server would see identical statements (other roles' schemas in the admin set-up change
    nothing for this one). A stack whose role differs in any of these gets a case of its own.
    """
    cases: dict[tuple[object, ...], list[tuple[str, str, AdminSetup]]] = {}
    for stack in ANY_STACK:
        database = spec_of_config(any_stack(stack)).database
        for role in database.roles if database else ():
            assert database is not None
            for setup in SETUPS if stack in COMMITTED else ("functions",):
                connection = database.connection[role.connection]
                sql_seen = (setup, role.name, vault_sql.creation_statements(role, setup), connection.database,
                            connection.admin_user)
                cases.setdefault(sql_seen, []).append((stack, role.name, setup))
    return [pytest.param(pairs[0], id="+".join(stack for stack, _, _ in pairs) + f"-{pairs[0][1]}-{pairs[0][2]}")
            for pairs in cases.values()]


def in_setup(connection: Connection, setup: AdminSetup) -> Connection:
    """``connection`` with the admin setup ``setup`` and the tests' table owner, on the test server (not
    dev's in-cluster instance)."""
    return dataclasses.replace(connection, admin_setup=setup, table_owner=TABLE_OWNER, in_cluster=False)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    expires: datetime
    """The expiration the request passed (whole seconds, as Vault's): what the server must hold."""


@dataclass
class World:
    """A fresh database for one connection of one stack, with its admin set up."""

    server: PostgresServer
    spec: EnvironmentSpec
    connection: Connection
    admin_password: str
    _open: list[vault_plugin.Connection] = field(default_factory=list)

    @property
    def database(self) -> str:
        return self.connection.database

    @property
    def admin_user(self) -> str:
        return self.connection.admin_user

    @property
    def setup(self) -> AdminSetup:
        return self.connection.admin_setup

    @property
    def grantor(self) -> str:
        """The role that holds the grant options and takes over revoked users' objects."""
        return grantee(self.connection)

    def creation(self, role: DatabaseRole) -> tuple[str, ...]:
        return vault_sql.creation_statements(role, self.setup)

    @property
    def renewal(self) -> tuple[str, ...]:
        return vault_sql.renew_statements(self.setup)

    @property
    def revocation(self) -> tuple[str, ...]:
        return vault_sql.revocation_statements(self.setup)

    @property
    def static_rotation(self) -> tuple[str, ...]:
        return vault_sql.static_rotation_statements(self.setup)

    def roles(self) -> tuple[DatabaseRole, ...]:
        assert self.spec.database is not None
        return tuple(r for r in self.spec.database.roles if r.connection == self.connection.name)

    def superuser(self) -> vault_plugin.Connection:
        return self._keep(self.server.superuser(self.database))

    def login(self, user: str, password: str) -> vault_plugin.Connection:
        """A session over TCP with SCRAM-SHA-256; raises ``psycopg.OperationalError`` when refused."""
        return self._keep(self.server.connect(user, password, self.database))

    def admin(self) -> vault_plugin.Connection:
        """The session Vault holds: the admin user over TCP."""
        return self.login(self.admin_user, self.admin_password)

    def create_user(self, role: DatabaseRole, expires_in: timedelta = timedelta(hours=1),
                    statements: tuple[str, ...] | None = None) -> Credentials:
        """A credentials request: a Vault-style username and password, the role's creation statements."""
        now = datetime.now(UTC).replace(microsecond=0)
        credentials = Credentials(vault_plugin.generate_username(DISPLAY_NAME, role.name, now),
                                  vault_plugin.generate_password(), now + expires_in)
        vault_plugin.new_user(self.admin(), self.creation(role) if statements is None else statements,
                              credentials.username, credentials.password, credentials.expires)
        return credentials

    def query(self, text: str, *params: object) -> list[tuple[object, ...]]:
        """Rows of a catalog query as the superuser."""
        with self.superuser() as connection:
            return connection.execute(text, params or None).fetchall()

    def as_grantor(self, statement: sql.Composed) -> None:
        """Runs ``statement`` as the role that grants to Vault's users (its grants are the ones
        revocation takes back)."""
        with self.superuser() as db, db.transaction():
            db.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(self.grantor)))
            db.execute(statement)

    def _keep(self, connection: vault_plugin.Connection) -> vault_plugin.Connection:
        self._open.append(connection)
        return connection

    def close(self) -> None:
        for connection in self._open:
            connection.close()


@pytest.fixture(scope="session")
def postgres(request: pytest.FixtureRequest) -> PostgresServer:
    server = PostgresServer(tls=ServerTls.throwaway(TLS_HOST))
    # Registered before starting, so that it runs even when start fails half-way.
    request.addfinalizer(server.stop)  # noqa: PT021
    atexit.register(server.stop)  # and when the session is cut short
    server.start()
    return server


@pytest.fixture(params=declared_roles())
def declared(request: pytest.FixtureRequest) -> tuple[EnvironmentSpec, DatabaseRole, AdminSetup]:
    stack, role_name, setup = request.param
    spec = spec_of_config(any_stack(stack))
    assert spec.database is not None
    return spec, spec.database.role[role_name], setup


@pytest.fixture
def role(declared: tuple[EnvironmentSpec, DatabaseRole, AdminSetup]) -> DatabaseRole:
    return declared[1]


@pytest.fixture
def world(postgres: PostgresServer, declared: tuple[EnvironmentSpec, DatabaseRole, AdminSetup]) -> Iterator[World]:
    spec, role, setup = declared
    assert spec.database is not None
    yield from make_world(postgres, spec, in_setup(spec.database.connection[role.connection], setup))


def make_world(server: PostgresServer, spec: EnvironmentSpec, connection: Connection, *,
               admin_setup: bool = True) -> Iterator[World]:
    """Resets the server to nothing but the bootstrap superuser, then lays the database out and runs
    the connection's admin setup (its dynamic and static roles') as the DBA would, unless not
    ``admin_setup`` (the admin's password is set either way)."""
    reset(server, connection.database)
    world = World(server, spec, connection, admin_password=vault_plugin.generate_password())
    assert spec.database is not None
    schemas = sorted({grant.schema for role in world.roles() for grant in role.grants} | {"public"})
    with server.superuser(connection.database) as db:
        db.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(TABLE_OWNER)))
        db.execute(sql.SQL("GRANT CREATE, USAGE ON SCHEMA public TO {}").format(sql.Identifier(TABLE_OWNER)))
        for schema in [*schemas, UNGRANTED_SCHEMA]:
            if schema != "public":
                db.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                    sql.Identifier(schema), sql.Identifier(TABLE_OWNER)))
            create_tables(db, schema)
        statements = setup_statements(ConnectionNeeds.of(connection, spec.database.roles, spec.database.static_roles))
        for statement in statements if admin_setup else [f'CREATE ROLE "{connection.admin_user}" LOGIN;']:
            db.execute(statement.encode())
        db.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
            sql.Identifier(connection.admin_user), sql.Literal(world.admin_password)))
    try:
        yield world
    finally:
        world.close()


def create_tables(db: vault_plugin.Connection, schema: str) -> None:
    """What the migrations create, as the table owner: an identity and a serial column, seed rows."""
    q = sql.Identifier(schema)
    with db.transaction():
        db.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(TABLE_OWNER)))
        db.execute(sql.SQL("CREATE TABLE {}.accounts (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
                           "email text NOT NULL)").format(q))
        db.execute(sql.SQL("CREATE TABLE {}.orders (id serial PRIMARY KEY, account_id integer NOT NULL, "
                           "note text)").format(q))
        for email in SEEDED_EMAILS:
            db.execute(sql.SQL("INSERT INTO {}.accounts (email) VALUES ({})").format(q, sql.Literal(email)))


def create_later_table(world: World, schema: str, name: str) -> None:
    """A migration run after some credentials were issued."""
    with world.superuser() as db, db.transaction():
        db.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(TABLE_OWNER)))
        db.execute(sql.SQL("CREATE TABLE {}.{} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                           "amount integer NOT NULL)").format(sql.Identifier(schema), sql.Identifier(name)))


def reset(server: PostgresServer, database: str) -> None:
    """Back to the bootstrap superuser alone, and ``database`` with an empty ``public`` schema and
    no functions schema.

    Databases are kept between tests (creating one takes the better part of a second): every other
    role's objects and privileges are dropped in each database, then the roles themselves.
    """
    with server.superuser() as db:
        db.execute("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                   "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'")
        databases = [str(name) for (name,) in db.execute(
            "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres'").fetchall()]
        if database not in databases:
            db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            databases.append(database)
        roles = [sql.Identifier(str(name)) for (name,) in db.execute(
            "SELECT rolname FROM pg_roles WHERE rolname <> current_user AND rolname !~ '^pg_'").fetchall()]
    for name in databases:
        with server.superuser(name) as db:
            db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
            for role in roles:  # one at a time: together they trip over shared default ACLs
                db.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(role))
    with server.superuser() as db:
        for role in roles:
            db.execute(sql.SQL("DROP ROLE {}").format(role))


def error_of(connection: vault_plugin.Connection, statement: str) -> str | None:
    """Runs ``statement`` in a transaction that is rolled back; the SQLSTATE it failed with, or None."""
    try:
        with connection.transaction(force_rollback=True):
            connection.execute(statement.encode())
    except psycopg.Error as error:
        return error.sqlstate
    return None
