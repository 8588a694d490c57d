"""One PostgreSQL server for the whole session (started here, stopped even when tests fail), and per
test a fresh database laid out the way the migrations and the operator leave it: a table-owner role
owning the tables of every granted schema, and the admin Vault connects as, created with exactly
``admin_setup_statements``."""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from components.environment import Connection, DatabaseRole, EnvironmentSpec
from components.render.sql import admin_setup_statements, creation_statements
from tests.postgres import vault_plugin
from tests.postgres.server import PostgresServer
from tests.support import ANY_STACK, any_stack, spec_of_config

TABLE_OWNER = "app_owner"
UNGRANTED_SCHEMA = "private"
DISPLAY_NAME = "kubernetes-api-service"
SEEDED_EMAILS = ("ada@example.com", "grace@example.com")


def declared_roles() -> list[Any]:
    """One test case per distinct dynamic role across the committed stacks and their copies with an
    application onboarded (see ``tests.support.ANY_STACK``).

    Stacks whose role runs the very same SQL (creation statements, and the admin set-up, database
    and admin of its connection) share one case, named after all of them, e.g.
    ``dev+staging+prod-api-role``: the server would see identical statements. A stack whose role
    differs in any of these gets a case of its own.
    """
    cases: dict[tuple[object, ...], list[tuple[str, str]]] = {}
    for stack in ANY_STACK:
        database = spec_of_config(any_stack(stack)).database
        for role in database.roles if database else ():
            connection = database.connection[role.connection] if database else None
            assert connection is not None
            on_connection = [r for r in database.roles if r.connection == role.connection] if database else []
            sql_seen = (role.name, creation_statements(role), connection.database, connection.admin_user,
                        admin_setup_statements(connection.admin_user, on_connection, TABLE_OWNER))
            cases.setdefault(sql_seen, []).append((stack, role.name))
    return [pytest.param(pairs[0], id="+".join(stack for stack, _ in pairs) + f"-{pairs[0][1]}")
            for pairs in cases.values()]


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


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
                                  vault_plugin.generate_password())
        vault_plugin.new_user(self.admin(), creation_statements(role) if statements is None else statements,
                              credentials.username, credentials.password, now + expires_in)
        return credentials

    def query(self, text: str, *params: object) -> list[tuple[object, ...]]:
        """Rows of a catalog query as the superuser."""
        with self.superuser() as connection:
            return connection.execute(text, params or None).fetchall()

    def _keep(self, connection: vault_plugin.Connection) -> vault_plugin.Connection:
        self._open.append(connection)
        return connection

    def close(self) -> None:
        for connection in self._open:
            connection.close()


@pytest.fixture(scope="session")
def postgres(request: pytest.FixtureRequest) -> PostgresServer:
    server = PostgresServer()
    # Registered before starting, so that it runs even when start fails half-way.
    request.addfinalizer(server.stop)  # noqa: PT021
    atexit.register(server.stop)  # and when the session is cut short
    server.start()
    return server


@pytest.fixture(params=declared_roles())
def declared(request: pytest.FixtureRequest) -> tuple[EnvironmentSpec, DatabaseRole]:
    stack, role_name = request.param
    spec = spec_of_config(any_stack(stack))
    assert spec.database is not None
    return spec, spec.database.role[role_name]


@pytest.fixture
def role(declared: tuple[EnvironmentSpec, DatabaseRole]) -> DatabaseRole:
    return declared[1]


@pytest.fixture
def world(postgres: PostgresServer, declared: tuple[EnvironmentSpec, DatabaseRole]) -> Iterator[World]:
    spec, role = declared
    assert spec.database is not None
    yield from make_world(postgres, spec, spec.database.connection[role.connection])


def make_world(server: PostgresServer, spec: EnvironmentSpec, connection: Connection) -> Iterator[World]:
    """Resets the server to nothing but the bootstrap superuser, then lays the database out."""
    reset(server, connection.database)
    world = World(server, spec, connection, admin_password=vault_plugin.generate_password())
    schemas = sorted({grant.schema for role in world.roles() for grant in role.grants} | {"public"})
    with server.superuser(connection.database) as db:
        db.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(TABLE_OWNER)))
        db.execute(sql.SQL("GRANT CREATE, USAGE ON SCHEMA public TO {}").format(sql.Identifier(TABLE_OWNER)))
        for schema in [*schemas, UNGRANTED_SCHEMA]:
            if schema != "public":
                db.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                    sql.Identifier(schema), sql.Identifier(TABLE_OWNER)))
            create_tables(db, schema)
        for statement in admin_setup_statements(connection.admin_user, world.roles(), TABLE_OWNER):
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
    """Back to the bootstrap superuser alone, and ``database`` with an empty ``public`` schema.

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
    if not roles:
        return
    for name in databases:
        with server.superuser(name) as db:
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
