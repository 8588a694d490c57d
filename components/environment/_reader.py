"""Typed reading of untrusted config values, with errors that name the exact config key."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from components import rules

from .durations import format_duration, parse_duration


class SpecError(Exception):
    """A stack's config is refused: which stack, which key, what is wrong, and how to fix it."""

    def __init__(self, stack: str, key: str, problem: str, fix: str) -> None:
        self.stack = stack
        self.key = key
        self.problem = problem
        self.fix = fix
        super().__init__(f"stack {stack!r}, config key {key!r}: {problem}. Fix: {fix}")


@dataclass(frozen=True)
class Name:
    """A naming rule: its pattern and how a reader should understand it."""

    pattern: re.Pattern[str]
    """Full-match pattern."""
    described: str
    """The rule in words, for the error message."""
    max_length: int
    """Longest allowed value."""


# Kubernetes namespaces and service accounts are DNS-1123 labels and subdomains; Vault names (roles,
# policies, mounts) are kept to the same safe set so they read the same in paths, HCL and annotations.
K8S_LABEL = Name(re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"), "lowercase letters, digits and '-', "
                 "starting and ending with a letter or digit (a DNS-1123 label)", 63)
K8S_SUBDOMAIN = Name(re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?"), "lowercase letters, digits, '-' and "
                     "'.', starting and ending with a letter or digit (a DNS-1123 subdomain)", 253)
VAULT_NAME = Name(re.compile(r"[a-z0-9]([-_a-z0-9]*[a-z0-9])?"), "lowercase letters, digits, '-' and '_', "
                  "starting and ending with a letter or digit", 128)
# Values that end up inside SQL are held to plain unquoted-identifier form: no quote, no semicolon,
# no case games; the SQL layer still quotes them.
SQL_IDENTIFIER = Name(re.compile(r"[a-z_][a-z0-9_]*"), "lowercase letters, digits and '_', starting with "
                      "a letter or '_' (a plain PostgreSQL identifier)", 63)
CONFIG_KEY = Name(re.compile(r"[A-Za-z][A-Za-z0-9]*"), "letters and digits, starting with a letter "
                  "(a camelCase config key)", 100)
KV_PATH = Name(re.compile(r"[a-z0-9][-_a-z0-9]*(/[a-z0-9][-_a-z0-9]*)*"), "segments of lowercase letters, "
               "digits, '-' and '_' separated by '/', with no leading or trailing '/'", 512)
HOST = Name(re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?"), "a DNS name of lowercase letters, digits, "
            "'-' and '.'", 253)
AWS_REGION = Name(re.compile(r"[a-z]{2}(-[a-z]+)+-\d"), "an AWS region such as eu-west-1", 32)
QUANTITY = Name(re.compile(r"\d+(\.\d+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?"), "a Kubernetes quantity such "
                "as 500m, 256Mi, 10Gi or 50G", 32)
AUDIENCE = Name(re.compile(r"[A-Za-z0-9][A-Za-z0-9:/._-]*"), "the audience of the cluster's service account "
                "tokens, e.g. https://kubernetes.default.svc", 253)


class Node:
    """A config object being read: tracks its key path and which of its keys were used."""

    def __init__(self, stack: str, key: str, value: Mapping[str, Any]) -> None:
        self.stack = stack
        self.key = key
        self._value = value
        self._used: set[str] = set()

    @classmethod
    def of(cls, stack: str, key: str, value: Any) -> Node:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise SpecError(stack, key, f"expected an object, got {_kind(value)}",
                            "write it as a YAML mapping of keys to values")
        return cls(stack, key, value)

    def error(self, name: str | None, problem: str, fix: str) -> SpecError:
        return SpecError(self.stack, self.path(name), problem, fix)

    def path(self, name: str | None) -> str:
        if name is None:
            return self.key
        # The root is the project's namespace ("vault-platform:"); nested keys read like --path.
        return f"{self.key}{name}" if self.key.endswith(":") else f"{self.key}.{name}"

    def keys(self) -> list[str]:
        return list(self._value)

    def has(self, name: str) -> bool:
        return self._value.get(name) is not None

    def raw(self, name: str) -> Any:
        self._used.add(name)
        return self._value.get(name)

    def string(self, name: str, default: str | None = None, rule: Name | None = None,
               choices: tuple[str, ...] = ()) -> str:
        value = self.raw(name)
        if value is None:
            if default is None:
                raise self.error(name, "is required but not set", f"set {self.path(name)!r}")
            return default
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.error(name, f"expected a string, got {_kind(value)}", "write it as a string")
        text = str(value)
        if choices and text not in choices:
            raise self.error(name, f"{text!r} is not one of {', '.join(choices)}",
                             f"use one of {', '.join(choices)}")
        if rule is not None:
            check_name(self, name, text, rule)
        return text

    def optional_string(self, name: str, rule: Name | None = None) -> str | None:
        if not self.has(name):
            self._used.add(name)
            return None
        return self.string(name, rule=rule)

    def integer(self, name: str, default: int | None = None, minimum: int = 0, maximum: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            if default is None:
                raise self.error(name, "is required but not set", f"set {self.path(name)!r}")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"expected a whole number, got {_kind(value)}",
                             "write a whole number without quotes")
        if value < minimum:
            raise self.error(name, f"{value} is below the minimum of {minimum}", f"use {minimum} or more")
        if maximum is not None and value > maximum:
            raise self.error(name, f"{value} is above the maximum of {maximum}", f"use {maximum} or less")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {_kind(value)}", "write true or false")
        return value

    def duration(self, name: str, default: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError:
            raise self.error(name, f"{value!r} is not a duration",
                             "write whole seconds or units like 90s, 30m, 1h, 1h30m or 7d") from None

    def child(self, name: str) -> Node:
        return Node.of(self.stack, self.path(name), self.raw(name))

    def children(self, name: str) -> Iterator[Node]:
        """The objects of a list, each with its index in its key path."""
        for index, item in enumerate(self.strings_or_items(name)):
            yield Node.of(self.stack, f"{self.path(name)}[{index}]", item)

    def strings(self, name: str, rule: Name | None = None) -> tuple[str, ...]:
        items = self.strings_or_items(name)
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise self.error(f"{name}[{index}]", f"expected a string, got {_kind(item)}",
                                 "write it as a string")
            if rule is not None:
                check_name(self, f"{name}[{index}]", item, rule)
        return tuple(items)

    def strings_or_items(self, name: str) -> list[Any]:
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(name, f"expected a list, got {_kind(value)}", "write it as a YAML list")
        return value

    def mapping(self, name: str) -> Mapping[str, Any]:
        value = self.raw(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(name, f"expected an object, got {_kind(value)}",
                             "write it as a YAML mapping of keys to values")
        return value

    def done(self) -> None:
        """Refuses keys this object does not know: a typo must not be silently ignored."""
        for name in self._value:
            if name not in self._used:
                known = sorted(self._used)
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"the known keys are {', '.join(known)}"
                raise self.error(name, "is not a known key", f"remove it or rename it; {hint}")


def check_name(node: Node, name: str, value: str, rule: Name) -> None:
    if len(value) > rule.max_length or not rule.pattern.fullmatch(value):
        raise node.error(name, f"{value!r} is not a valid name",
                         f"use {rule.described}, at most {rule.max_length} characters")


def declared(names: Iterable[str]) -> str:
    """``declared: a, b`` (or ``none``), for a fix that points at what exists."""
    return f"declared: {', '.join(sorted(names)) or 'none'}"


def refuse_duplicate(node: Node, key: str, value: str, seen: Mapping[str, object], what: str) -> None:
    """Refuses a second ``what`` named ``value`` (``seen`` holds the earlier ones by name)."""
    if value in seen:
        raise node.error(key, f"a second {what} is named {value!r}", f"give each {what} its own name")


def check_ttl_order(node: Node, default_key: str, default: int, max_key: str, maximum: int) -> None:
    """Refuses a default TTL above its maximum (the rule the policy pack shares)."""
    if (problem := rules.ttl_order(default_key, default, max_key, maximum)) is not None:
        raise node.error(default_key, problem,
                         f"lower {default_key} or raise {max_key} so that {default_key} <= {max_key}")


def check_ttl_cap(node: Node, key: str, seconds: int, cap: int) -> None:
    """Refuses a TTL of 0 (Vault's default of 32 days) or above ``cap`` (the rule the policy pack
    shares, at its default cap)."""
    if seconds == 0:
        raise node.error(key, "0 would fall back to the mount's default of 32 days", "set a short TTL such as 1h")
    if (problem := rules.ttl_cap(key, seconds, cap)) is not None:
        raise node.error(key, problem, f"use at most {format_duration(cap)}")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
