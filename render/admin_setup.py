"""The SQL a DBA runs once per database, as a superuser, so that Vault's admin can serve a
connection's roles (printed by ``platformctl db-setup``). Two setups, chosen per connection:

- ``functions`` (default): the admin has no CREATEROLE. A NOLOGIN role, :data:`OWNER`, owns four
  ``SECURITY DEFINER`` functions in the schema :data:`SCHEMA`; the admin may only EXECUTE them.
  They create a user with Vault's generated name, exactly the requested grants (each one declared
  grantable here) and a finite expiry, renew and drop only users they created, and set the password
  only of the static users declared here; they never grant role membership.
- ``createrole``: the admin itself has CREATEROLE and the roles' privileges WITH GRANT OPTION. On
  PostgreSQL 15 CREATEROLE may grant itself any non-superuser role (``pg_execute_server_program``,
  the table owner), so that admin is superuser-equivalent there.

Every script is idempotent: running it again changes nothing, so the whole script is always a safe
answer; :func:`setup_changes` gives only what a change to the stack needs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from environment import Connection, DatabaseRole, StaticRole
from environment.database import FUNCTIONS_OWNER, FUNCTIONS_SCHEMA, TABLE_PRIVILEGES
from vaultmodel import rules

SCHEMA = FUNCTIONS_SCHEMA
OWNER = FUNCTIONS_OWNER
# The dev in-cluster instance's bootstrap superuser (the image's POSTGRES_USER), which owns its tables.
IN_CLUSTER_SUPERUSER = "postgres"
# Vault's default username template for the PostgreSQL plugin: v-<display name, 8>-<role name, 8>-
# <20 random letters and digits>-<unix time>, 63 characters at most (display names are Vault's
# token display names: kubernetes-..., oidc-..., root).
USERNAME_PATTERN = r"^v-[A-Za-z0-9._@-]{0,8}-[a-z0-9_-]{1,8}-[A-Za-z0-9]{20}-[0-9]{1,12}$"
# Expiry slack for clock skew between Vault and the server, on top of the longest lease.
EXPIRY_SLACK_SECONDS = 300
# The static users' PostgreSQL 16 membership grant: ADMIN to alter the role, never its privileges.
_PG16 = 160000


def quote_identifier(name: str) -> str:
    """``name`` as a double-quoted PostgreSQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """``text`` as a single-quoted PostgreSQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def schema_privileges(roles: Iterable[DatabaseRole]) -> dict[str, tuple[str, ...]]:
    """Per schema, the table privileges some role grants there (in first-seen order)."""
    by_schema: dict[str, dict[str, None]] = {}
    for role in roles:
        for grant in role.grants:
            by_schema.setdefault(grant.schema, {}).update(dict.fromkeys(grant.privileges))
    return {schema: tuple(privileges) for schema, privileges in sorted(by_schema.items())}


@dataclass(frozen=True)
class ConnectionNeeds:
    """What a connection's roles need from the database, the input of every setup script."""

    connection: Connection
    """The connection (admin, setup, table owner)."""
    privileges: Mapping[str, tuple[str, ...]]
    """Table privileges per schema that its dynamic roles hand out."""
    static_users: tuple[str, ...]
    """Users of its static roles, sorted."""

    @classmethod
    def of(cls, connection: Connection, roles: Iterable[DatabaseRole],
           static_roles: Iterable[StaticRole] = ()) -> ConnectionNeeds:
        if connection.in_cluster:  # dev's migrations run as the bootstrap superuser: it owns the tables
            connection = dataclasses.replace(connection, table_owner=IN_CLUSTER_SUPERUSER)
        return cls(connection,
                   schema_privileges(r for r in roles if r.connection == connection.name),
                   tuple(sorted({s.username for s in static_roles if s.connection == connection.name})))


def grantee(connection: Connection) -> str:
    """The role that holds the grant options: the functions' owner, or the admin itself."""
    return OWNER if connection.admin_setup == "functions" else connection.admin_user


def setup_statements(needs: ConnectionNeeds) -> tuple[str, ...]:
    """The complete, idempotent script for one connection (its password is set separately)."""
    connection = needs.connection
    statements = [*_roles(connection)]
    if connection.admin_setup == "functions":
        statements += _functions(connection.admin_user)
    for schema, privileges in needs.privileges.items():
        statements += grant_statements(connection, schema, privileges)
    for user in needs.static_users:
        statements += static_user_statements(connection, user)
    return tuple(statements)


def grant_statements(connection: Connection, schema: str, privileges: Sequence[str]) -> list[str]:
    """What lets the granting role hand ``privileges`` on the tables of ``schema`` to Vault's users:
    the privileges WITH GRANT OPTION on the tables that exist and, through the table owner's
    default privileges, on those created later; the sequences too when INSERT is among them."""
    holder = quote_identifier(grantee(connection))
    owner = quote_identifier(connection.table_owner)
    q = quote_identifier(schema)
    listed = ", ".join(privileges)
    statements = [
        f"GRANT USAGE ON SCHEMA {q} TO {holder} WITH GRANT OPTION;",
        f"GRANT {listed} ON ALL TABLES IN SCHEMA {q} TO {holder} WITH GRANT OPTION;",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {q} GRANT {listed} ON TABLES TO {holder} "
        "WITH GRANT OPTION;",
    ]
    if "INSERT" in privileges:
        statements += [
            f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {q} TO {holder} WITH GRANT OPTION;",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {q} GRANT USAGE ON SEQUENCES TO {holder} "
            "WITH GRANT OPTION;",
        ]
    if connection.admin_setup == "functions":
        statements += [f"INSERT INTO {SCHEMA}.grantable (schema_name, privilege) VALUES "
                       f"({quote_literal(schema)}, {quote_literal(p)}) ON CONFLICT DO NOTHING;" for p in privileges]
    return statements


def revoke_statements(connection: Connection, schema: str, privileges: Sequence[str], *,
                      sequences: bool) -> list[str]:
    """Undoes :func:`grant_statements` for ``privileges`` no role hands out any more (``sequences``:
    no role inserts any more). Users already holding them keep them until their lease ends."""
    holder = quote_identifier(grantee(connection))
    owner = quote_identifier(connection.table_owner)
    q = quote_identifier(schema)
    listed = ", ".join(privileges)
    statements = []
    if connection.admin_setup == "functions":
        statements += [f"DELETE FROM {SCHEMA}.grantable WHERE schema_name = {quote_literal(schema)} "
                       f"AND privilege = {quote_literal(p)};" for p in privileges]
    statements += [
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {q} REVOKE GRANT OPTION FOR {listed} ON TABLES "
        f"FROM {holder};",
        f"REVOKE GRANT OPTION FOR {listed} ON ALL TABLES IN SCHEMA {q} FROM {holder};",
    ]
    if sequences:
        statements += [
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {q} REVOKE GRANT OPTION FOR USAGE ON SEQUENCES "
            f"FROM {holder};",
            f"REVOKE GRANT OPTION FOR USAGE ON ALL SEQUENCES IN SCHEMA {q} FROM {holder};",
        ]
    return statements


def static_user_statements(connection: Connection, user: str, *, removed: bool = False) -> list[str]:
    """Lets the functions set ``user``'s password (the CREATEROLE admin needs nothing on 15), or, with
    ``removed``, no longer."""
    if connection.admin_setup != "functions":
        return []
    if removed:
        return [f"DELETE FROM {SCHEMA}.static_user WHERE username = {quote_literal(user)};"]
    # PostgreSQL 16 lets CREATEROLE alter only roles it holds ADMIN on; 15 refuses this grammar.
    grant = (f"GRANT {quote_identifier(user)} TO {quote_identifier(OWNER)} "
             "WITH ADMIN TRUE, INHERIT FALSE, SET FALSE")
    return [
        f"INSERT INTO {SCHEMA}.static_user (username) VALUES ({quote_literal(user)}) ON CONFLICT DO NOTHING;",
        f"DO $$ BEGIN IF pg_catalog.current_setting('server_version_num')::int >= {_PG16} THEN "
        f"EXECUTE {quote_literal(grant)}; END IF; END $$;",
    ]


def _roles(connection: Connection) -> list[str]:
    admin = connection.admin_user
    functions = connection.admin_setup == "functions"
    attributes = "NOSUPERUSER NOCREATEDB NOREPLICATION NOBYPASSRLS"
    statements = []
    if functions:
        statements.append(_create_role_if_missing(OWNER, f"NOLOGIN CREATEROLE {attributes}"))
        # Also when it exists: the owner never logs in and keeps nothing but CREATEROLE.
        statements.append(f"ALTER ROLE {quote_identifier(OWNER)} WITH NOLOGIN CREATEROLE {attributes};")
    createrole = "NOCREATEROLE" if functions else "CREATEROLE"
    statements.append(_create_role_if_missing(admin, f"LOGIN {createrole} {attributes}"))
    # An admin moved from the createrole setup loses CREATEROLE here.
    statements.append(f"ALTER ROLE {quote_identifier(admin)} WITH LOGIN {createrole} {attributes};")
    return statements


def _create_role_if_missing(role: str, attributes: str) -> str:
    return (f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {quote_literal(role)}) "
            f"THEN CREATE ROLE {quote_identifier(role)} WITH {attributes}; END IF; END $$;")


def _functions(admin_user: str) -> list[str]:
    """The schema, its bookkeeping tables and the four functions, owned by :data:`OWNER`.

    The schema and tables belong to the superuser running this, not to the owner: the owner cannot
    grant anything on them (nor add itself static users), and only EXECUTE reaches the admin.
    Every function pins ``search_path`` to ``pg_catalog, pg_temp`` (nothing of the caller's is
    looked up), quotes every identifier and literal with ``format``'s ``%I`` and ``%L``, and raises
    ``insufficient_privilege`` on every refusal.
    """
    admin = quote_identifier(admin_user)
    owner = quote_identifier(OWNER)
    cap = rules.DATABASE_MAX_TTL_CAP + EXPIRY_SLACK_SECONDS
    table_privileges = ", ".join(quote_literal(p) for p in TABLE_PRIVILEGES)
    header = ("RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp "
              "AS $function$")
    check_expiry = f"""
  expiry := valid_until::timestamptz;
  IF NOT isfinite(expiry) OR expiry > now() + interval '{cap} seconds' THEN
    RAISE EXCEPTION 'vault_api: expiry % is not within {cap} seconds', valid_until
      USING ERRCODE = 'insufficient_privilege';
  END IF;"""
    check_name = f"""
  IF username IS NULL OR username !~ {quote_literal(USERNAME_PATTERN)} THEN
    RAISE EXCEPTION 'vault_api: % is not a name Vault generates', username USING ERRCODE = 'insufficient_privilege';
  END IF;"""
    check_verifier = """
  IF password IS NULL OR password !~ '^SCRAM-SHA-256[$]' THEN
    RAISE EXCEPTION 'vault_api: the password must be a SCRAM-SHA-256 verifier (password_authentication = scram-sha-256)'
      USING ERRCODE = 'insufficient_privilege';
  END IF;"""
    issued_only = """
  IF NOT EXISTS (SELECT FROM vault_api.issued_user i WHERE i.username = drop_user.username) THEN
    RAISE EXCEPTION 'vault_api: % was not created by vault_api.create_user', username
      USING ERRCODE = 'insufficient_privilege';
  END IF;"""
    functions = {
        "create_user(username text, password text, valid_until text, grants jsonb)": f"""
DECLARE
  expiry timestamptz;
  item jsonb;
  wanted text;
  privileges text[];
BEGIN{check_name}{check_verifier}{check_expiry}
  IF jsonb_typeof(grants) IS DISTINCT FROM 'array' THEN
    RAISE EXCEPTION 'vault_api: grants must be a JSON array' USING ERRCODE = 'insufficient_privilege';
  END IF;
  EXECUTE format('CREATE ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS '
                 'PASSWORD %L VALID UNTIL %L', username, password, valid_until);
  INSERT INTO vault_api.issued_user (username) VALUES (username);
  FOR item IN SELECT value FROM jsonb_array_elements(grants) LOOP
    privileges := ARRAY(SELECT upper(p) FROM jsonb_array_elements_text(item -> 'privileges') p);
    IF cardinality(privileges) = 0 THEN
      RAISE EXCEPTION 'vault_api: a grant without privileges' USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOREACH wanted IN ARRAY privileges LOOP
      IF wanted NOT IN ({table_privileges}) OR NOT EXISTS (
          SELECT FROM vault_api.grantable g WHERE g.schema_name = item ->> 'schema' AND g.privilege = wanted) THEN
        RAISE EXCEPTION 'vault_api: % on schema % is not grantable', wanted, item ->> 'schema'
          USING ERRCODE = 'insufficient_privilege';
      END IF;
    END LOOP;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', item ->> 'schema', username);
    EXECUTE format('GRANT %s ON ALL TABLES IN SCHEMA %I TO %I', array_to_string(privileges, ', '),
                   item ->> 'schema', username);
    IF 'INSERT' = ANY (privileges) THEN
      EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', item ->> 'schema', username);
    END IF;
  END LOOP;
END""",
        "renew_user(username text, valid_until text)": f"""
DECLARE
  expiry timestamptz;
BEGIN{check_name}{issued_only.replace("drop_user.", "renew_user.")}{check_expiry}
  EXECUTE format('ALTER ROLE %I VALID UNTIL %L', username, valid_until);
END""",
        "drop_user(username text)": f"""
DECLARE
  granted record;
BEGIN{check_name}
  IF NOT EXISTS (SELECT FROM pg_roles r WHERE r.rolname = username) THEN
    DELETE FROM vault_api.issued_user i WHERE i.username = drop_user.username;
    RETURN;
  END IF;{issued_only}
  EXECUTE format('ALTER ROLE %I NOLOGIN', username);
  -- Membership lets the owner end the user's sessions and take over its objects.
  EXECUTE format('GRANT %I TO %I', username, current_user);
  PERFORM pg_terminate_backend(a.pid, 10000) FROM pg_stat_activity a WHERE a.usename = username;
  EXECUTE format('REASSIGN OWNED BY %I TO %I', username, current_user);
  -- Exactly the privileges granted (DROP OWNED alone would revoke ALL on sequences, which needs
  -- grant options the owner does not hold).
  FOR granted IN
    SELECT c.oid::regclass AS relation, c.relkind, string_agg(DISTINCT a.privilege_type, ', ') AS privileges
      FROM pg_class c, aclexplode(c.relacl) a
     WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = username)
       AND a.grantor = (SELECT oid FROM pg_roles WHERE rolname = current_user)
     GROUP BY c.oid, c.relkind
  LOOP
    EXECUTE format('REVOKE %s ON %s %s FROM %I', granted.privileges,
                   CASE granted.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, granted.relation, username);
  END LOOP;
  EXECUTE format('DROP OWNED BY %I', username);
  EXECUTE format('DROP ROLE %I', username);
  DELETE FROM vault_api.issued_user i WHERE i.username = drop_user.username;
END""",
        "set_password(username text, password text)": f"""
BEGIN{check_verifier}
  IF NOT EXISTS (SELECT FROM vault_api.static_user s WHERE s.username = set_password.username) THEN
    RAISE EXCEPTION 'vault_api: % is not a declared static user', username USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF username = 'postgres' OR username = session_user OR EXISTS (
      SELECT FROM pg_roles r WHERE r.rolname = username
         AND (r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls
              OR pg_has_role(r.oid, 'pg_execute_server_program', 'USAGE')
              OR pg_has_role(r.oid, 'pg_write_server_files', 'USAGE')
              OR pg_has_role(r.oid, 'pg_read_server_files', 'USAGE')
              OR pg_has_role(r.oid, {quote_literal(OWNER)}, 'USAGE'))) THEN
    RAISE EXCEPTION 'vault_api: % is a privileged role', username USING ERRCODE = 'insufficient_privilege';
  END IF;
  EXECUTE format('ALTER ROLE %I WITH PASSWORD %L', username, password);
END""",
    }
    statements = [
        f"CREATE SCHEMA IF NOT EXISTS {SCHEMA};",
        f"REVOKE ALL ON SCHEMA {SCHEMA} FROM PUBLIC;",
        f"GRANT USAGE ON SCHEMA {SCHEMA} TO {owner}, {admin};",
        f"CREATE TABLE IF NOT EXISTS {SCHEMA}.issued_user (username name PRIMARY KEY);",
        f"CREATE TABLE IF NOT EXISTS {SCHEMA}.static_user (username name PRIMARY KEY);",
        f"CREATE TABLE IF NOT EXISTS {SCHEMA}.grantable (schema_name name, privilege text, "
        "PRIMARY KEY (schema_name, privilege));",
        f"REVOKE ALL ON {SCHEMA}.issued_user, {SCHEMA}.static_user, {SCHEMA}.grantable FROM PUBLIC;",
        f"GRANT SELECT, INSERT, DELETE ON {SCHEMA}.issued_user TO {owner};",
        f"GRANT SELECT ON {SCHEMA}.static_user, {SCHEMA}.grantable TO {owner};",
    ]
    for signature, body in functions.items():
        name = f"{SCHEMA}.{signature.split('(')[0]}"
        types = ", ".join(argument.split()[1] for argument in signature.split("(")[1].rstrip(")").split(", "))
        statements += [
            f"CREATE OR REPLACE FUNCTION {SCHEMA}.{signature}\n{header}{body}\n$function$;",
            f"ALTER FUNCTION {name}({types}) OWNER TO {owner};",
            f"REVOKE ALL ON FUNCTION {name}({types}) FROM PUBLIC;",
            f"GRANT EXECUTE ON FUNCTION {name}({types}) TO {admin};",
        ]
    return statements


def create_user_grants(role: DatabaseRole) -> str:
    """The role's grants as the JSON argument of ``vault_api.create_user``."""
    return json.dumps([{"schema": g.schema, "privileges": list(g.privileges)} for g in role.grants],
                      separators=(",", ":"))
