"""What Vault's PostgreSQL database plugin does with our statements, so that the tests run them the
way Vault runs them. Mirrors hashicorp/vault ``plugins/database/postgresql/postgresql.go`` (NewUser,
DeleteUser, changeUserExpiration, changeUserPassword, containsMultilineStatement),
``plugins/database/postgresql/scram/scram.go`` (the SCRAM-SHA-256 verifier),
``sdk/helper/dbtxn`` (textual ``{{key}}`` substitution) and go-secure-stdlib
``strutil.ParseArbitraryStringSlice`` (splitting on ``;``):

- Creation (NewUser) and revocation (DeleteUser): a statement that "contains a multiline
  statement" (the word ``END`` outside quoted strings) runs whole; any other is split on ``;`` and
  each non-empty piece runs. All pieces of one call run in ONE transaction, rolled back on error.
- Renewal (changeUserExpiration) and password changes (changeUserPassword: root rotation with
  ``{{username}}``, static-role rotation with ``{{name}}``) always split on ``;``, in one transaction.
- Substitutions: creation ``name``, ``username``, ``password``, ``expiration``; revocation ``name``,
  ``username``; renewal ``name``, ``username``, ``expiration``; password change ``name``,
  ``username``, ``password``.
- With ``password_authentication = scram-sha-256`` (our connections), ``{{password}}`` becomes a
  SCRAM-SHA-256 verifier Vault computes; the user logs in with the clear password.
- ``{{expiration}}`` uses the Go layout ``2006-01-02 15:04:05-0700``; usernames follow the default
  template ``v-<display name 8>-<role 8>-<20 random>-<unix time>`` cut to 63 characters; passwords
  follow the default policy (20 characters of letters, digits and ``-``, one of each class at least).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import string
from collections.abc import Mapping, Sequence
from datetime import datetime

import psycopg

SCRAM_ITERATIONS = 4096
SCRAM_SALT_BYTES = 16
EXPIRATION_LAYOUT = "%Y-%m-%d %H:%M:%S%z"  # Go: 2006-01-02 15:04:05-0700
USERNAME_MAX = 63
PASSWORD_LENGTH = 20
_END = re.compile(r"\bEND\b")
_DOUBLE_QUOTED = re.compile(r'(".*?")')
_SINGLE_QUOTED = re.compile(r"('.*?')")
_RANDOM_ALPHABET = string.ascii_letters + string.digits
_PASSWORD_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits, "-")

Connection = psycopg.Connection[tuple[object, ...]]


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (base64), as PostgreSQL stores
    it in ``pg_authid.rolpassword``; a fresh 16-byte salt unless one is given."""
    salt = secrets.token_bytes(SCRAM_SALT_BYTES) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations, 32)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def format_expiration(moment: datetime) -> str:
    """``{{expiration}}``: ``moment`` (timezone-aware) in Go's ``2006-01-02 15:04:05-0700``."""
    if moment.tzinfo is None:
        raise ValueError("expiration must be timezone-aware")
    return moment.strftime(EXPIRATION_LAYOUT)


def generate_username(display_name: str, role_name: str, now: datetime) -> str:
    """``v-<display name, 8>-<role name, 8>-<20 random letters and digits>-<unix time>``, cut to 63."""
    random_part = "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(20))
    name = f"v-{display_name[:8]}-{role_name[:8]}-{random_part}-{int(now.timestamp())}"
    return name[:USERNAME_MAX]


def generate_password() -> str:
    """20 characters of letters, digits and ``-``, with at least one of each class."""
    alphabet = "".join(_PASSWORD_CLASSES)
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(PASSWORD_LENGTH))
        if all(any(c in chars for c in password) for chars in _PASSWORD_CLASSES):
            return password


def contains_multiline_statement(statement: str) -> bool:
    """Vault's ``containsMultilineStatement``: ``END`` as a word once quoted strings are removed.

    Mirrors Vault exactly, including that each removal starts again from the original statement,
    so only the last quoted string found is actually removed.
    """
    literals = [*_DOUBLE_QUOTED.findall(statement), *_SINGLE_QUOTED.findall(statement)]
    without_literals = statement
    for literal in literals:
        without_literals = statement.replace(literal, "")
    return _END.search(without_literals) is not None


def split_statements(statement: str, separator: str = ";") -> list[str]:
    """``strutil.ParseArbitraryStringSlice`` followed by the plugin's trim-and-skip-empty loop."""
    text = statement.strip()
    if not text:
        return []
    with contextlib.suppress(binascii.Error, UnicodeDecodeError):  # base64 of the statements, if it is
        text = base64.b64decode(text, validate=True).decode()
    try:
        decoded = json.loads(text)
    except ValueError:
        decoded = None
    if isinstance(decoded, list) and all(isinstance(piece, str) for piece in decoded):
        pieces: list[str] = decoded  # a JSON array of strings is taken as is
    else:
        pieces = text.split(separator)
    return [piece.strip() for piece in pieces if piece.strip()]


def substitute(template: str, values: Mapping[str, str]) -> str:
    """``dbtxn``'s textual ``{{key}}`` replacement."""
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def _execute(connection: Connection, queries: Sequence[str], values: Mapping[str, str]) -> None:
    """All ``queries`` in one transaction, committed only if every one succeeds."""
    with connection.transaction(), connection.cursor() as cursor:
        for query in queries:
            # No parameters: the simple query protocol, like Vault's pgx ExecContext without args.
            cursor.execute(substitute(query, values).encode())


def _whole_or_split(statements: Sequence[str]) -> list[str]:
    queries: list[str] = []
    for statement in statements:
        queries += [statement] if contains_multiline_statement(statement) else split_statements(statement)
    return queries


def _split(statements: Sequence[str]) -> list[str]:
    return [query for statement in statements for query in split_statements(statement)]


def new_user(connection: Connection, statements: Sequence[str], username: str, password: str,
             expiration: datetime) -> None:
    """NewUser: the creation statements, with ``{{password}}`` as a SCRAM-SHA-256 verifier."""
    if not statements:
        raise ValueError("empty creation statements")
    values = {"name": username, "username": username, "password": scram_verifier(password),
              "expiration": format_expiration(expiration)}
    _execute(connection, _whole_or_split(statements), values)


def delete_user(connection: Connection, statements: Sequence[str], username: str) -> None:
    """DeleteUser with custom revocation statements."""
    _execute(connection, _whole_or_split(statements), {"name": username, "username": username})


def change_expiration(connection: Connection, statements: Sequence[str], username: str,
                      expiration: datetime) -> None:
    """changeUserExpiration: renewal."""
    values = {"name": username, "username": username, "expiration": format_expiration(expiration)}
    _execute(connection, _split(statements), values)


def change_password(connection: Connection, statements: Sequence[str], username: str, password: str) -> None:
    """changeUserPassword: root rotation and static-role rotation, the verifier as ``{{password}}``."""
    if not password:
        raise ValueError("missing password")
    values = {"name": username, "username": username, "password": scram_verifier(password)}
    _execute(connection, _split(statements), values)
