"""Typed reading of untrusted config values, with errors that name the exact config key.

Problems are collected, not raised one at a time: :func:`collecting` records the first problem of one
item (an application, a role, a section) and goes on with the next, and :func:`load_spec` raises
them all at once as one :class:`StackRefused`.

Every typed read goes through a :class:`Node` method, which a :class:`ReadObserver` can watch
(:func:`observing`): ``platformctl schema`` derives the config files' JSON Schemas from what a load
reads, so that the loader stays their one definition.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
import re
import ssl
from collections.abc import Callable, Iterable, Iterator, Mapping, Set
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import yaml

from vaultmodel import rules
from vaultmodel.durations import format_duration, parse_duration

T = TypeVar("T")
P = ParamSpec("P")
REMOVE = object()
"""The value of an edit that removes the key."""
FILE_KEY_PREFIX = "apps/"
"""How the key of a value read from an application's file starts: ``apps/<team>/<app>.yaml:<key>``."""


class SpecError(Exception):
    """A stack's config is refused: which stack, which key, what is wrong, and how to fix it.

    ``edits`` is the fix in machine form when it is concrete: ``(key, value)`` pairs that, applied
    in order (``REMOVE`` deletes the key), make the spec accept this value. ``refers_to`` names the
    declared item a reference points at (``transit.keys:payments``), so that a reference to an item
    that is itself refused is not reported twice.
    """

    def __init__(self, stack: str, key: str, problem: str, fix: str, *,
                 edits: tuple[tuple[str, Any], ...] = (), refers_to: str | None = None,
                 unknown_key: bool = False, line: int | None = None) -> None:
        self.stack = stack
        self.key = key
        self.problem = problem
        self.fix = fix
        self.edits = edits
        self.refers_to = refers_to
        self.unknown_key = unknown_key
        self.line = line
        super().__init__(f"stack {stack!r}, {self.where}: {problem}. Fix: {fix}")

    @property
    def where(self) -> str:
        """``config key '<key>'``; for a key of an application's file (``apps/<team>/<app>.yaml:<key>``),
        the file, the line and the key in it."""
        path, colon, inner = self.key.partition(":")
        if not (colon and path.startswith(FILE_KEY_PREFIX)):
            return f"config key {self.key!r}"
        at = f", line {self.line}" if self.line is not None else ""
        return f"{path}{at}, key {inner!r}" if inner else f"{path}{at}"

    def at_line(self, line: int) -> SpecError:
        """This problem, with the line of its file it is on."""
        return SpecError(self.stack, self.key, self.problem, self.fix, edits=self.edits, refers_to=self.refers_to,
                         unknown_key=self.unknown_key, line=line)


class StackRefused(SpecError):
    """Every problem of a stack's config, in one message; its stack, key, problem and fix are the
    first problem's (unknown keys come first: a misspelt key is usually why another is missing)."""

    def __init__(self, problems: Iterable[SpecError]) -> None:
        found = tuple(problems)
        self.problems = tuple(sorted(found, key=lambda error: not error.unknown_key))
        first = self.problems[0]
        super().__init__(first.stack, first.key, first.problem, first.fix, edits=first.edits,
                         refers_to=first.refers_to, unknown_key=first.unknown_key, line=first.line)
        if len(self.problems) > 1:
            lines = [f"stack {first.stack!r}: {len(self.problems)} problems in the config"]
            lines += [f"  {index}. {error.where}: {error.problem}. Fix: {error.fix}"
                      for index, error in enumerate(self.problems, 1)]
            self.args = ("\n".join(lines),)


class _Problems:
    """The problems found so far in one stack, and the items they made unusable."""

    def __init__(self, locate: Callable[[str], int | None]) -> None:
        self.found: list[SpecError] = []
        self._keys: set[str] = set()
        self._broken: set[str] = set()
        self._locate = locate

    def add(self, error: SpecError) -> None:
        if isinstance(error, StackRefused):
            for problem in error.problems:
                self.add(problem)
            return
        # One problem per key (a value that is wrong is not also reported as out of range), and none
        # for a reference to an item that is refused itself.
        if error.key in self._keys or (error.refers_to is not None and self._is_broken(error.refers_to)):
            return
        self._keys.add(error.key)
        line = self._locate(error.key) if error.line is None else None
        self.found.append(error if line is None else error.at_line(line))

    def mark_broken(self, item: str) -> None:
        self._broken.add(item)

    def _is_broken(self, reference: str) -> bool:
        kind = reference.partition(":")[0]
        parts = kind.split(".")
        return (reference in self._broken or f"{kind}:*" in self._broken
                or any(".".join(parts[:n]) in self._broken for n in range(1, len(parts) + 1)))


_PROBLEMS: ContextVar[_Problems | None] = ContextVar("spec_problems", default=None)


class _Stop(Exception):
    """Raised by :func:`stop_if_refused` to leave :func:`collected` with what it has."""


@contextmanager
def collected(locate: Callable[[str], int | None] = lambda key: None) -> Iterator[None]:
    """Collects every problem raised inside, then raises them all as one :class:`StackRefused`;
    ``locate`` gives the line of a key read from a file (``None`` when it knows none)."""
    problems = _Problems(locate)
    token = _PROBLEMS.set(problems)
    try:
        yield
    except SpecError as error:
        problems.add(error)
    except _Stop:
        pass
    finally:
        _PROBLEMS.reset(token)
    if problems.found:
        raise StackRefused(problems.found)


def stop_if_refused() -> None:
    """Ends the load when problems were found: what follows needs every part of the spec."""
    problems = _PROBLEMS.get()
    if problems is not None and problems.found:
        raise _Stop


class _Collecting:
    """The context manager :func:`collecting` returns (a class: one per item of a long list)."""

    def __init__(self, broken: str | tuple[str, ...] | None) -> None:
        self._broken = broken

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _: object) -> bool:
        if not isinstance(error, SpecError):
            return False
        problems = _PROBLEMS.get()
        if problems is None:
            return False
        problems.add(error)
        broken = self._broken
        for item in (broken,) if isinstance(broken, str) else broken or ():
            problems.mark_broken(item)
        return True


def collecting(broken: str | tuple[str, ...] | None = None) -> _Collecting:
    """Records the first problem of the block and goes on after it, so that one bad item does not
    hide the problems of the others. ``broken`` names what the block declares (``transit.keys:x``,
    ``database``): references to it are then not reported as undeclared. Outside :func:`collected`
    the problem is raised as it is."""
    return _Collecting(broken)


def attempt(load: Callable[[], T], broken: str | tuple[str, ...] | None = None) -> T | None:
    """``load()``, or ``None`` once its problem is recorded (see :func:`collecting`)."""
    with collecting(broken):
        return load()
    return None


def report(error: SpecError) -> None:
    """Records a problem and goes on (raises it outside :func:`collected`)."""
    problems = _PROBLEMS.get()
    if problems is None:
        raise error
    problems.add(error)


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


class ReadObserver(Protocol):
    """Watches a load read its config (see :func:`observing`): told of the loader's own calls only,
    not of the reads a :class:`Node` method makes to do its job (``string`` reads ``raw``)."""

    def created(self, node: Node) -> None:
        """``node`` reads a config object (its ``key`` says where)."""

    def read(self, node: Node, how: str, name: str, arguments: Mapping[str, Any]) -> None:
        """The loader called ``node.<how>(name, **arguments)`` (every parameter, defaults included)."""

    def named(self, node: Node, name: str, value: str, rule: Name) -> None:
        """The loader checked ``value``, written at ``name`` of ``node`` (as a key or a value), against ``rule``."""

    def closed(self, node: Node) -> None:
        """``node`` refused the keys it did not read (:meth:`Node.done`)."""


_OBSERVER: ContextVar[ReadObserver | None] = ContextVar("config_read_observer", default=None)
"""The observer :func:`check_name`, a function rather than a method, tells."""
_IN_A_READ: ContextVar[bool] = ContextVar("in_a_config_read", default=False)


OBSERVED_READS = ("raw", "require", "string", "optional_string", "integer", "boolean", "flag", "duration", "child",
                  "children", "strings", "strings_or_items", "mapping")
"""The :class:`Node` methods that read a key, which an observer is told of."""


@contextmanager
def observing(observer: ReadObserver) -> Iterator[None]:
    """Tells ``observer`` of every read of the loads run inside (not reentrant). :class:`Node`'s methods
    are wrapped only meanwhile: a load that nobody observes pays nothing for it."""
    originals = {name: vars(Node)[name] for name in (*OBSERVED_READS, "__init__", "done")}
    init, done = originals["__init__"], originals["done"]

    def created(node: Node, *args: Any, **kwargs: Any) -> None:
        init(node, *args, **kwargs)
        observer.created(node)

    def closed(node: Node) -> None:
        observer.closed(node)
        done(node)

    wrapped = {name: _observed(originals[name], observer) for name in OBSERVED_READS}
    token = _OBSERVER.set(observer)
    for name, method in {**wrapped, "__init__": created, "done": closed}.items():
        setattr(Node, name, method)
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(Node, name, method)
        _OBSERVER.reset(token)


def _observed(method: Callable[Concatenate[Node, str, P], T],
              observer: ReadObserver) -> Callable[Concatenate[Node, str, P], T]:
    """``method``, a read of :class:`Node`, telling ``observer`` of each call that no other read makes."""
    how = method.__name__
    signature = inspect.signature(method)

    @functools.wraps(method)
    def read(node: Node, name: str, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if _IN_A_READ.get():
            return method(node, name, *args, **kwargs)
        bound = signature.bind(node, name, *args, **kwargs)
        bound.apply_defaults()
        observer.read(node, how, name, dict(list(bound.arguments.items())[2:]))
        inside = _IN_A_READ.set(True)
        try:
            return method(node, name, *args, **kwargs)
        finally:
            _IN_A_READ.reset(inside)

    return read


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

    def error(self, name: str | None, problem: str, fix: str, *, edit: Any = None,
              refers_to: str | None = None) -> SpecError:
        """The problem with ``name`` (the object itself for ``None``); ``edit`` is the value the fix
        sets there, when the fix is that concrete."""
        edits = () if edit is None else ((self.path(name), edit),)
        return SpecError(self.stack, self.path(name), problem, fix, edits=edits, refers_to=refers_to)

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

    def written(self, name: str, seconds: int) -> str:
        """A duration as the stack file writes it (``48h`` stays ``48h``), or its default's form."""
        value = self._value.get(name)
        return value if isinstance(value, str) else format_duration(seconds)

    def required(self, name: str) -> Any:
        """The value of a required key that is not set: when a key of this object is a misspelling of
        it, that key is the problem (reported as unknown, with the rename as its fix) and its value is
        read in its place, so that the rest of the object is still checked; else the key is missing."""
        misspelt = self._misspelling(name)
        if misspelt is None:
            raise self.error(name, "is required but not set", f"set {self.path(name)!r}")
        report(self._unknown(misspelt, name, f"rename it to {name!r}, which is required"))
        self._used.add(misspelt)
        return self._value[misspelt]

    def require(self, name: str, fix: str) -> None:
        """Refuses a required key that is not set with ``fix``, where "set it" would not say what to
        write; a misspelling of it is left to :meth:`required`, which reads it in its place."""
        if not self.has(name) and self._misspelling(name) is None:
            raise self.error(name, "is required but not set", fix)

    def _misspelling(self, name: str) -> str | None:
        """An unread key of this object, set, that is spelled almost as ``name``."""
        unused = [key for key in self._value if key not in self._used and isinstance(key, str)]
        close = difflib.get_close_matches(name, unused, n=1, cutoff=0.7)
        return close[0] if close and self._value[close[0]] is not None else None

    def string(self, name: str, default: str | None = None, rule: Name | None = None,
               choices: tuple[str, ...] = ()) -> str:
        value = self.raw(name)
        if value is None:
            if default is None:
                value = self.required(name)
            else:
                return default
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.error(name, f"expected a string, got {_kind(value)}", "write it as a string")
        text = str(value)
        if choices and text not in choices:
            close = difflib.get_close_matches(text, choices, n=1)
            raise self.error(name, f"{text!r} is not one of {', '.join(choices)}",
                             f"use {close[0]!r}" if close else f"use one of {', '.join(choices)}",
                             edit=close[0] if close else None)
        if rule is not None:
            check_name(self, name, text, rule)
        return text

    def optional_string(self, name: str, rule: Name | None = None) -> str | None:
        if not self.has(name):
            self._used.add(name)
            return None
        return self.string(name, rule=rule)

    def integer(self, name: str, default: int | None = None, minimum: int = 0, maximum: int | None = None,
                why: str = "") -> int:
        """A whole number in ``minimum..maximum``; ``why`` says where the range comes from."""
        value = self.raw(name)
        if value is None:
            if default is None:
                value = self.required(name)
            else:
                return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"expected a whole number, got {_kind(value)}",
                             "write a whole number without quotes")
        reason = f" ({why})" if why else ""
        if value < minimum or (maximum is not None and value > maximum):
            bound = minimum if value < minimum else maximum
            accepted = f"{minimum} to {maximum}" if maximum is not None else f"{minimum} or more"
            raise self.error(name, f"{value} is {'below the minimum' if value < minimum else 'above the maximum'} "
                             f"of {bound}{reason}", f"use {accepted}", edit=bound)
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {_kind(value)}", "write true or false")
        return value

    def flag(self, name: str, fix: str = "write true or false, or remove the key") -> bool:
        """A top-level boolean, which the Pulumi CLI hands over as text (``"true"``): false when unset."""
        value = self.raw(name)
        if value is None or value is False or value == "false":
            return False
        if value is True or value == "true":
            return True
        raise self.error(name, f"{value!r} is not true or false", fix, edit=REMOVE)

    def duration(self, name: str, default: int) -> int:
        """A duration with its unit (``90s``, ``30m``, ``1h30m``, ``7d``); a bare number is refused, as
        ``tokenTtl: 60`` may mean minutes to whoever wrote it. ``0`` needs none."""
        value = self.raw(name)
        if value is None:
            return default
        if (value == 0 and not isinstance(value, bool)) or value == "0":
            return 0
        if (isinstance(value, int) and not isinstance(value, bool) and value > 0) or (
                isinstance(value, str) and value.strip().isdigit()):
            seconds = int(value)
            same = f" (= {format_duration(seconds)})" if format_duration(seconds) != f"{seconds}s" else ""
            raise self.error(name, f"{value!r} has no unit", f"write it with its unit: {seconds}s{same} for "
                             f"seconds, {seconds}m for minutes", edit=f"{seconds}s")
        try:
            return parse_duration(value)
        except ValueError:
            raise self.error(name, f"{value!r} is not a duration",
                             "write it with units, like 90s, 30m, 1h, 1h30m or 7d") from None

    def child(self, name: str) -> Node:
        return Node.of(self.stack, self.path(name), self.raw(name))

    def children(self, name: str) -> Iterator[Node]:
        """The objects of a list, each named in its key path by its ``name`` (or ``key``, ``mount``,
        ``path``): ``transit.keys[payments-card-data]``; by its index when it has none or shares it."""
        seen: set[str] = set()
        for index, item in enumerate(self.strings_or_items(name)):
            label = label_of(item)
            if label is None or label in seen:
                label = str(index)
            seen.add(label)
            yield Node.of(self.stack, f"{self.path(name)}[{label}]", item)

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
        """Refuses keys this object does not know, every one of them: a typo must not be silently
        ignored."""
        known = sorted(self._used)
        for name in self._value:
            if name not in self._used:
                close = difflib.get_close_matches(name, known, n=1)
                report(self._unknown(name, close[0] if close else None,
                                     f"rename it to {close[0]!r}" if close else
                                     f"remove it; the known keys are {', '.join(known)}"))

    def _unknown(self, name: str, meant: str | None, fix: str) -> SpecError:
        edits: tuple[tuple[str, Any], ...] = ((self.path(name), REMOVE),)
        if meant is not None and meant in self._value:
            fix = f"remove it: {meant!r} is set already"
        elif meant is not None:
            edits += ((self.path(meant), self._value[name]),)
        hint = f" (did you mean {meant!r}?)" if meant is not None else ""
        return SpecError(self.stack, self.path(name), f"is not a known key{hint}", fix, edits=edits,
                         unknown_key=True)


_LABEL = re.compile(r"[A-Za-z0-9_.:/*+-]{1,128}")


def label_of(item: Any) -> str | None:
    """How an item of a list is named in messages: by its name, not its position."""
    if isinstance(item, Mapping):
        for key in ("name", "key", "mount", "path"):
            value = item.get(key)
            if isinstance(value, str) and _LABEL.fullmatch(value) and not value.isdigit():
                return value
    return None


PORTS = (1, 65535)
"""TCP and UDP ports."""


def ca_pem(node: Node, key: str, signed: str) -> str | None:
    """The PEM text at ``key``, checked to hold CA certificates (OpenSSL, through ``ssl``), or ``None``
    when unset; ``signed`` says what the CA signed, for the fix."""
    text = node.optional_string(key)
    if text is None:
        return None
    if (problem := ca_problem(text)) is not None:
        raise node.error(key, problem, f"paste the CA certificate(s) that signed {signed}, -----BEGIN "
                         f"CERTIFICATE----- to -----END CERTIFICATE-----, as a YAML block ({key}: |)")
    return text


def ca_problem(text: str) -> str | None:
    """Why PEM ``text`` cannot verify a server (OpenSSL, through ``ssl``; text around the PEM blocks is
    ignored, as OpenSSL and Go's crypto/x509 ignore it), or ``None`` when it holds CA certificates."""
    if not text.isascii():
        return "is not PEM certificates (it holds text that is not ASCII)"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError) as error:
        return f"is not PEM certificates ({error.args[-1]})"
    if context.cert_store_stats()["x509_ca"] == 0:
        return "holds no CA certificate (a server certificate cannot sign another)"
    return None


def port_problem(port: int) -> str | None:
    if PORTS[0] <= port <= PORTS[1]:
        return None
    return f"port {port} is outside {PORTS[0]} to {PORTS[1]}"


_QUANTITY_SUFFIX = {"": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
                    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60}


def quantity(text: str) -> float:
    """The value of a Kubernetes quantity already checked against ``QUANTITY``: ``500m`` -> 0.5."""
    number = text.rstrip("kmKMGTPEi")
    return float(number) * _QUANTITY_SUFFIX[text[len(number):]]


def follows(value: str, rule: Name) -> bool:
    """``value`` follows the naming ``rule``."""
    return len(value) <= rule.max_length and rule.pattern.fullmatch(value) is not None


def check_name(node: Node, name: str, value: str, rule: Name) -> None:
    if (observer := _OBSERVER.get()) is not None and not _IN_A_READ.get():
        observer.named(node, name, value, rule)
    if not follows(value, rule):
        raise node.error(name, f"{value!r} is not a valid name",
                         f"use {rule.described}, at most {rule.max_length} characters")


def name_of(item: Node) -> str:
    """The item's name as written, for marking it refused (``*`` when it has none)."""
    name = item.raw("name")
    return name if isinstance(name, str) else "*"


def declared(names: Iterable[str]) -> str:
    """``declared: a, b`` (or ``none``), for a fix that points at what exists."""
    return f"declared: {', '.join(sorted(names)) or 'none'}"


def matches(pattern: str, names: Set[str]) -> bool:
    """``pattern`` names a declared item; a glob (``*``, ``+``) must match at least one.

    The exact case is a set lookup, so checking every policy of hundreds of apps stays linear.
    """
    if "*" not in pattern and "+" not in pattern:
        return pattern in names
    glob = pattern.replace("+", "*")
    return any(fnmatch.fnmatchcase(name, glob) for name in names)


def refuse_duplicate(node: Node, key: str, value: str, seen: Mapping[str, object], what: str) -> None:
    """Refuses a second ``what`` named ``value`` (``seen`` holds the earlier ones by name)."""
    if value in seen:
        raise node.error(key, f"a second {what} is named {value!r}", f"give each {what} its own name")


# The TTL checks run once an item is read: they report their problem and let the item's other
# checks run too (outside collected() they raise it).

def check_ttl_order(node: Node, default_key: str, default: int, max_key: str, maximum: int) -> None:
    """Refuses a default TTL above its maximum (the rule the policy pack shares)."""
    if default <= maximum:
        return  # before formatting anything: this runs for every application
    shown = (node.written(default_key, default), node.written(max_key, maximum))
    if (problem := rules.ttl_order(default_key, default, max_key, maximum, shown=shown)) is not None:
        report(node.error(default_key, problem, f"use at most {shown[1]} (the {max_key}), or raise {max_key}",
                          edit=shown[1]))


def check_min_ttl(node: Node, key: str, seconds: int, minimum: int) -> None:
    """Refuses a TTL so short that whoever holds it spends its life renewing it."""
    if 0 < seconds < minimum:
        report(node.error(key, f"{node.written(key, seconds)} is below the minimum of {format_duration(minimum)}: "
                          "the agent renews at two thirds of a TTL and could not keep up",
                          f"use at least {format_duration(minimum)}", edit=format_duration(minimum)))


def check_ttl_cap(node: Node, key: str, seconds: int, cap: int) -> None:
    """Refuses a TTL of 0 (Vault's default of 32 days) or above ``cap`` (the rule the policy pack
    shares, at its default cap)."""
    if seconds == 0:
        short = format_duration(min(cap, 3600))
        report(node.error(key, "0 would fall back to the mount's default of 32 days",
                          f"set a short TTL such as {short}", edit=short))
    elif seconds > cap and (problem := rules.ttl_cap(key, seconds, cap, shown=node.written(key, seconds))):
        report(node.error(key, problem, f"use at most {format_duration(cap)}", edit=format_duration(cap)))


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


class YamlFileError(ValueError):
    """A file that is not valid YAML: the message names the file, and the line and column where the
    parser stopped."""

    def __init__(self, name: str, line: int | None, column: int | None, problem: str) -> None:
        self.name = name
        self.line = line
        self.column = column
        self.problem = problem
        self.fix = ("check the indentation and quoting there (a value with ': ' or a leading '*', '&', '{' "
                    "needs quotes)")
        where = f", line {line}, column {column}" if line is not None else ""
        super().__init__(f"{name}{where}: not valid YAML: {problem}. Fix: {self.fix}")


def parse_yaml(text: str, name: str) -> Any:
    """The document of the YAML file ``text`` (``name`` is its path, for messages)."""
    try:
        # libyaml's loader: the same documents and errors as safe_load, ten times faster on a large file.
        return yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as error:
        raise _yaml_file_error(error, name) from None


def parse_yaml_with_lines(text: str, name: str) -> tuple[Any, dict[str, int]]:
    """The document of the YAML file ``text``, and the line of each key and list item in it, by its
    key as :class:`Node` writes it (``environments.prod.tokenTtl``, ``transitKeys[0]`` and, as
    :meth:`Node.children` names it, ``transitKeys[payments-card-data]``)."""
    loader = yaml.CSafeLoader(text)
    try:
        node = loader.get_single_node()
        document = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        raise _yaml_file_error(error, name) from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    if node is not None:
        _record_lines(node, document, "", lines)
    return document, lines


def _record_lines(node: yaml.Node, value: Any, key: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode) and isinstance(value, Mapping):
        for key_node, value_node in node.value:
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if name is None or name not in value:
                continue
            path = f"{key}.{name}" if key else str(name)
            lines.setdefault(path, key_node.start_mark.line + 1)
            _record_lines(value_node, value[name], path, lines)
    elif isinstance(node, yaml.SequenceNode) and isinstance(value, list):
        seen: set[str] = set()
        for index, (item_node, item) in enumerate(zip(node.value, value, strict=False)):
            paths = [f"{key}[{index}]"]
            label = label_of(item)
            if label is not None and label not in seen:
                paths.append(f"{key}[{label}]")
                seen.add(label)
            for path in paths:
                lines.setdefault(path, item_node.start_mark.line + 1)
                _record_lines(item_node, item, path, lines)


def _yaml_file_error(error: yaml.YAMLError, name: str) -> YamlFileError:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        problem = " ".join(part for part in (error.context, error.problem) if part)
        if mark is not None:
            return YamlFileError(name, mark.line + 1, mark.column + 1, problem)
        return YamlFileError(name, None, None, problem)
    return YamlFileError(name, None, None, str(error))
