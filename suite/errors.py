"""Errors a user can fix: each names the file, the field or column, and what to do."""

from __future__ import annotations


class ConfigError(Exception):
    """Bad input (scenario, data or metadata). The CLI prints it and exits with code 2."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)
