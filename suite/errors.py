"""Errors a user can fix: each names the file, the field or column, and what to do."""

from __future__ import annotations

import reprlib
from typing import Any

#: Characters of a user's input an error message echoes; longer input is cut (a file's content is not a message).
ECHO_LIMIT = 80
#: Characters of a whole error message; past it the rest is cut (thousands of problems, or a huge echoed value).
MESSAGE_LIMIT = 10_000


def brief(value: Any, limit: int = ECHO_LIMIT) -> str:
    """`repr(value)`, cut to `limit` characters with a note of how much was left out.

    Every error that echoes input uses it, so a huge or deeply nested value never becomes a huge message.
    """
    text = _REPR.repr(value)  # reprlib stops at a few items and levels: cheap on any input
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... (cut)"


def _bounded_repr() -> reprlib.Repr:
    shown = reprlib.Repr()
    shown.maxlevel, shown.maxdict, shown.maxlist, shown.maxtuple, shown.maxset = 3, 4, 6, 6, 6
    shown.maxstring, shown.maxother, shown.maxlong = ECHO_LIMIT, ECHO_LIMIT, 40
    return shown


_REPR = _bounded_repr()


class ConfigError(Exception):
    """Bad input (scenario, data or metadata). The CLI prints it and exits with code 2."""

    @classmethod
    def of(cls, problems: list[str], *, source: str | None = None) -> ConfigError:
        """One error listing several problems, one per line."""
        unique = list(dict.fromkeys(problems))
        return cls(unique[0] if len(unique) == 1 else "\n  " + "\n  ".join(unique), source=source)

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        if len(message) > MESSAGE_LIMIT:
            message = f"{message[:MESSAGE_LIMIT]}\n  ... ({len(message) - MESSAGE_LIMIT:,} more characters cut)"
        sep = ":" if message.startswith("\n") else ": "
        super().__init__(f"{source}{sep}{message}" if source else message.lstrip("\n"))
