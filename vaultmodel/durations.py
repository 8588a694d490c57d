"""Durations as Vault writes them (``90s``, ``30m``, ``1h``, ``1h30m``, ``7d``) or whole seconds (the stack
config requires the unit: see ``Node.duration``)."""

from __future__ import annotations

import re

HOUR = 3600
DAY = 24 * HOUR
YEAR = 365 * DAY
_UNIT_SECONDS = {"s": 1, "m": 60, "h": HOUR, "d": DAY}
_DURATION = re.compile(r"^(?:\d+[smhd])+$")
_PART = re.compile(r"(\d+)([smhd])")


def parse_duration(value: object) -> int:
    """Seconds in ``value``: an int, a digit string, or unit parts like ``1h30m``.

    Raises ``ValueError`` for anything else, including negatives and floats.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        if _DURATION.match(text):
            return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(text))
    raise ValueError(f"{value!r} is not a duration")


def format_duration(seconds: int) -> str:
    """The shortest unit form of ``seconds``: 3600 -> ``1h``, 5400 -> ``1h30m``, 0 -> ``0s``."""
    if seconds == 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
