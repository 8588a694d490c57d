"""The SQL that Vault's PostgreSQL plugin runs for our roles (``database/roles/:name``).

Vault substitutes ``{{name}}``, ``{{password}}`` and ``{{expiration}}`` textually. Generated
usernames contain dashes and mixed case (``v-kubernet-api-role-Ab3d...``), so every ``{{name}}`` is
double-quoted as an identifier. The plugin splits a statement on ``;`` unless it contains the
word ``END`` outside quotes (a ``DO`` block), which it runs whole: the revocation below relies on that.
All identifiers that come from the spec are validated as plain identifiers and quoted again here.
"""

from __future__ import annotations

from collections.abc import Sequence

from environment import AdminSetup, DatabaseRole, Grant

from . import admin_setup
from .admin_setup import quote_identifier

# Vault's own defaults for the connection (root rotation) and renewal, kept explicit in the spec so
# that they show up in the plan and are exercised by the PostgreSQL tests.
RENEW_STATEMENTS = ("ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}';",)
ROOT_ROTATION_STATEMENTS = ("ALTER ROLE \"{{username}}\" WITH PASSWORD '{{password}}';",)
STATIC_ROTATION_STATEMENTS = ("ALTER ROLE \"{{name}}\" WITH PASSWORD '{{password}}';",)

# Revocation must leave nothing behind even when the user still has sessions open, holds grants or
# created objects of its own, and must succeed when run twice (Vault retries a failed revocation).
# The admin is granted the user's role first: in PostgreSQL 15 a CREATEROLE admin needs membership
# to terminate the user's sessions and to reassign its objects. Termination waits (up to 10s) for
# each session to end, so that its temporary objects are gone before ownership is reassigned.
# Objects are reassigned to the admin, not dropped, so that revoking a lease never deletes
# application data. The privileges the admin granted are revoked one by one, exactly as held:
# DROP OWNED alone revokes ALL, which on a sequence also revokes SELECT and UPDATE on its columns,
# for which the admin holds no grant option (it holds only USAGE), and PostgreSQL refuses that.
# Privileges granted to the user by anyone else cannot be revoked by the admin: DROP ROLE then
# fails, the whole revocation rolls back and Vault retries; never grant to v-* users by hand.
REVOCATION_STATEMENTS = (
    """DO $$
DECLARE
  granted record;
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{{name}}') THEN
    EXECUTE format('ALTER ROLE %I NOLOGIN', '{{name}}');
    EXECUTE format('GRANT %I TO %I', '{{name}}', current_user);
    PERFORM pg_catalog.pg_terminate_backend(pid, 10000)
      FROM pg_catalog.pg_stat_activity WHERE usename = '{{name}}';
    EXECUTE format('REASSIGN OWNED BY %I TO %I', '{{name}}', current_user);
    FOR granted IN
      SELECT c.oid::pg_catalog.regclass AS relation, c.relkind,
             pg_catalog.string_agg(DISTINCT a.privilege_type, ', ') AS privileges
        FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
       WHERE a.grantee = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = '{{name}}')
         AND a.grantor = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
       GROUP BY c.oid, c.relkind
    LOOP
      EXECUTE format('REVOKE %s ON %s %s FROM %I', granted.privileges,
                     CASE granted.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                     granted.relation, '{{name}}');
    END LOOP;
    EXECUTE format('DROP OWNED BY %I', '{{name}}');
    EXECUTE format('DROP ROLE %I', '{{name}}');
  END IF;
END
$$;""",
)


# With the functions setup the admin can do nothing but call them (see ``admin_setup``); root rotation
# stays the plain ALTER ROLE above: any role may change its own password.
FUNCTIONS_RENEW_STATEMENTS = (f"SELECT {admin_setup.SCHEMA}.renew_user('{{{{name}}}}', '{{{{expiration}}}}');",)
FUNCTIONS_REVOCATION_STATEMENTS = (f"SELECT {admin_setup.SCHEMA}.drop_user('{{{{name}}}}');",)
FUNCTIONS_STATIC_ROTATION_STATEMENTS = (
    f"SELECT {admin_setup.SCHEMA}.set_password('{{{{name}}}}', '{{{{password}}}}');",)


def creation_statements(role: DatabaseRole, setup: AdminSetup) -> tuple[str, ...]:
    """The role's creation statements: verbatim when the spec gives them (``createrole`` only),
    else from its grants.

    The user can log in until ``{{expiration}}``, which Vault moves on renewal; tables created
    after the user are not visible to it (no default privileges, so revocation has no default-ACL
    entries to clean up): the next credentials, at most ``max_ttl`` later, see them.
    """
    if role.creation_statements:
        return role.creation_statements
    if setup == "functions":
        # One statement, no ';' inside (Vault splits on it) and no END (no schema or privilege is one).
        return (f"SELECT {admin_setup.SCHEMA}.create_user('{{{{name}}}}', '{{{{password}}}}', '{{{{expiration}}}}', "
                f"'{admin_setup.create_user_grants(role)}');",)
    return grant_statements(role.grants)


def renew_statements(setup: AdminSetup) -> tuple[str, ...]:
    return FUNCTIONS_RENEW_STATEMENTS if setup == "functions" else RENEW_STATEMENTS


def revocation_statements(setup: AdminSetup) -> tuple[str, ...]:
    return FUNCTIONS_REVOCATION_STATEMENTS if setup == "functions" else REVOCATION_STATEMENTS


def static_rotation_statements(setup: AdminSetup) -> tuple[str, ...]:
    return FUNCTIONS_STATIC_ROTATION_STATEMENTS if setup == "functions" else STATIC_ROTATION_STATEMENTS


def grant_statements(grants: Sequence[Grant]) -> tuple[str, ...]:
    statements = ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"]
    for grant in grants:
        schema = quote_identifier(grant.schema)
        statements.append(f'GRANT USAGE ON SCHEMA {schema} TO "{{{{name}}}}";')
        statements.append(f"GRANT {', '.join(grant.privileges)} ON ALL TABLES IN SCHEMA {schema} "
                          'TO "{{name}}";')
        if "INSERT" in grant.privileges:
            # serial and identity columns draw from sequences: INSERT is useless without them.
            statements.append(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO "{{{{name}}}}";')
    return tuple(statements)
