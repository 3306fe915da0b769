"""Errors a user can fix: each names the file, the field or column, and what to do."""

from __future__ import annotations


class ConfigError(Exception):
    """Bad input (scenario, data or metadata). The CLI prints it and exits with code 2."""

    @classmethod
    def of(cls, problems: list[str], *, source: str | None = None) -> ConfigError:
        """One error listing several problems, one per line."""
        unique = list(dict.fromkeys(problems))
        return cls(unique[0] if len(unique) == 1 else "\n  " + "\n  ".join(unique), source=source)

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        sep = ":" if message.startswith("\n") else ": "
        super().__init__(f"{source}{sep}{message}" if source else message.lstrip("\n"))
