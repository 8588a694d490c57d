"""Hand-written ``creationStatements``: only forms that always create Vault's own user, with Vault's
password and expiry, and give it plain privileges, are accepted.

Each list item is split the way Vault's PostgreSQL plugin splits it (on ``;``; an item containing
the word ``END``, a ``DO`` block, runs whole and cannot be checked, so it is refused). The pieces
must be, in this order:

1. ``CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`` (or
   ``CREATE USER``, which implies LOGIN), with optionally ``INHERIT``, ``NOINHERIT``,
   ``CONNECTION LIMIT <n>`` and the ``NO...`` attributes;
2. any number of ``GRANT <privileges> ON <objects> TO "{{name}}"`` (no ``WITH GRANT OPTION``, no
   role membership) and ``ALTER ROLE "{{name}}" SET <parameter> TO <value>``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

NAME = '"{{name}}"'
CREATE_EXAMPLE = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"

_IDENT = r'(?:[a-z_][a-z0-9_$]*|"(?:[^"]|"")+")'
_QUALIFIED = rf"{_IDENT}(?:\s*\.\s*{_IDENT})?"
_PRIVILEGE = r"(?:SELECT|INSERT|UPDATE|DELETE|TRUNCATE|REFERENCES|TRIGGER|USAGE|EXECUTE|CONNECT|TEMPORARY|TEMP)"
_PRIVILEGES = rf"(?:ALL(?:\s+PRIVILEGES)?|{_PRIVILEGE}(?:\s*,\s*{_PRIVILEGE})*)"
_OBJECTS = (rf"(?:ALL\s+(?:TABLES|SEQUENCES|FUNCTIONS|ROUTINES)\s+IN\s+SCHEMA\s+{_IDENT}(?:\s*,\s*{_IDENT})*"
            rf"|(?:(?:TABLE|SEQUENCE|SCHEMA|DATABASE)\s+)?{_QUALIFIED}(?:\s*,\s*{_QUALIFIED})*)")
_NAME = r'"\{\{name\}\}"'
_GRANT = re.compile(rf"GRANT\s+{_PRIVILEGES}\s+ON\s+{_OBJECTS}\s+TO\s+{_NAME}", re.IGNORECASE)
_ALTER_SET = re.compile(rf"ALTER\s+(?:ROLE|USER)\s+{_NAME}\s+SET\s+(?P<parameter>[a-z_][a-z0-9_.]*)\s*(?:=|TO)\s*"
                        r"(?:'[^']*'|[A-Za-z0-9_.-]+)", re.IGNORECASE)
_CREATE = re.compile(r"CREATE\s+(?P<kind>ROLE|USER)\s+(?P<who>\S+)(?P<options>.*)", re.IGNORECASE | re.DOTALL)
_OPTION = re.compile(r"\s+(?:(?P<with>WITH)|(?P<login>LOGIN)|NOSUPERUSER|NOCREATEDB|NOCREATEROLE|NOREPLICATION"
                     r"|NOBYPASSRLS|INHERIT|NOINHERIT|CONNECTION\s+LIMIT\s+-?\d+"
                     r"|(?P<password>(?:ENCRYPTED\s+)?PASSWORD\s+'\{\{password\}\}')"
                     r"|(?P<expiry>VALID\s+UNTIL\s+'\{\{expiration\}\}'))", re.IGNORECASE)
_END = re.compile(r"\bEND\b")
_GRANT_TO = re.compile(r"\sTO\s+(?P<grantee>.+?)\s*$", re.IGNORECASE | re.DOTALL)
# Parameters that would change who the user's sessions act as.
_FORBIDDEN_PARAMETERS = ("role", "session_authorization")


@dataclass(frozen=True)
class StatementProblem:
    """Why a list of creation statements is refused."""

    index: int | None
    """The list item at fault; ``None`` for the list as a whole."""
    problem: str
    """What is wrong."""
    fix: str
    """How to fix it."""


def creation_problem(statements: Sequence[str]) -> StatementProblem | None:
    """The first reason ``statements`` cannot be Vault's creation statements, or ``None``."""
    created = False
    for index, statement in enumerate(statements):
        if not statement.strip():
            return StatementProblem(index, "is empty", "remove it, or write the statement")
        if _END.search(statement):
            return StatementProblem(index, "is a block Vault runs whole (it contains END), which cannot be checked",
                                    "declare grants, or write plain CREATE ROLE, GRANT and ALTER ROLE statements")
        for piece in (p.strip() for p in statement.split(";")):
            if not piece:
                continue
            problem = _piece_problem(piece, created)
            if problem is not None:
                return StatementProblem(index, *problem)
            created = True
    if not created:
        return StatementProblem(None, "holds no statement", f"start with {CREATE_EXAMPLE}")
    return None


def _piece_problem(piece: str, created: bool) -> tuple[str, str] | None:
    shown = "`" + " ".join(piece.split()) + "`"
    if "{{name}}" in piece.replace(NAME, ""):
        return (f"{shown} uses {{{{name}}}} without double quotes; Vault's names hold '-' and capitals",
                f"write {NAME}")
    create = _CREATE.fullmatch(piece)
    if not created:
        if create is None:
            return (f"{shown} comes before Vault's user is created",
                    f"start with {CREATE_EXAMPLE}")
        return _create_problem(shown, create)
    if create is not None:
        return f"{shown} creates a second role", "create only Vault's user, once, first"
    if _GRANT.fullmatch(piece) or _alter_set_ok(piece):
        return None
    alter = _ALTER_SET.fullmatch(piece)
    if alter is not None:
        return (f"{shown} sets {alter['parameter']}, which changes who the user's sessions act as",
                "remove it")
    if piece.upper().startswith("GRANT"):
        if re.search(r"\sWITH\s+(GRANT|ADMIN)\s+OPTION", piece, re.IGNORECASE):
            return f"{shown} lets the user grant further", "remove WITH ... OPTION"
        grantee = _GRANT_TO.search(piece)
        if grantee is not None and grantee["grantee"] != NAME:
            return (f"{shown} grants to {grantee['grantee']}, not to Vault's user {NAME}", f"grant to {NAME}")
        if not re.search(r"\sON\s", piece, re.IGNORECASE):
            return (f"{shown} grants role membership, which carries whatever that role may do",
                    "grant table, sequence or schema privileges instead")
    return (f"{shown} is not a statement the platform accepts",
            f"use GRANT <privileges> ON <objects> TO {NAME} or ALTER ROLE {NAME} SET <parameter> TO <value>")


def _alter_set_ok(piece: str) -> bool:
    match = _ALTER_SET.fullmatch(piece)
    return match is not None and match["parameter"].lower() not in _FORBIDDEN_PARAMETERS


def _create_problem(shown: str, create: re.Match[str]) -> tuple[str, str] | None:
    if create["who"] != NAME:
        return (f"{shown} creates the fixed role {create['who']}: every credentials request must create its "
                "own user", f"create Vault's generated user: {CREATE_EXAMPLE}")
    options = create["options"]
    found: dict[str, bool] = {"login": create["kind"].upper() == "USER", "password": False, "expiry": False}
    position = 0
    while position < len(options):
        option = _OPTION.match(options, position)
        if option is None:
            rest = " ".join(options[position:].split())
            for fixed, what, placeholder in (
                    (r"(ENCRYPTED\s+)?PASSWORD\s", "password", "PASSWORD '{{password}}'"),
                    (r"VALID\s+UNTIL\s", "expiry", "VALID UNTIL '{{expiration}}'")):
                if re.match(fixed, rest, re.IGNORECASE):
                    return (f"{shown} sets a fixed {what} instead of Vault's {placeholder}",
                            f"write {CREATE_EXAMPLE}")
            return (f"{shown} sets {rest.split()[0]!r}, which Vault's users never get",
                    f"keep to {CREATE_EXAMPLE}")
        for key in found:
            found[key] |= option[key] is not None
        position = option.end()
    if not found["password"]:
        return (f"{shown} has no PASSWORD '{{{{password}}}}': Vault could not hand out the password",
                f"write {CREATE_EXAMPLE}")
    if not found["expiry"]:
        return (f"{shown} has no VALID UNTIL '{{{{expiration}}}}': the user would outlive its lease",
                f"write {CREATE_EXAMPLE}")
    if not found["login"]:
        return f"{shown} creates a role that cannot log in", f"write {CREATE_EXAMPLE}"
    return None
