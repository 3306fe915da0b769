"""Registries of generators and checks: a decorator for built-ins, entry points for plugins.

Third-party packages register through the entry-point groups `suite.generators` and
`suite.checks` (`[project.entry-points."suite.generators"] mygen = "pkg.mod:MyGen"`).
Names are validated when registered, duplicates are an error (a shadowed check would weaken
the gate), and a plugin that fails to import is recorded and re-raised when it is asked for.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from suite.errors import ConfigError

T = TypeVar("T", bound=type)
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")


class RegistryError(ConfigError):
    """A component could not be registered or found."""


class DuplicateError(RegistryError):
    """Two components under one name: always an error, a shadowed check would weaken the gate."""


class Registry(Generic[T]):
    """Named component classes of one kind, from this repository and from installed plugins."""

    def __init__(self, kind: str, group: str, *, builtin: tuple[str, ...], methods: tuple[str, ...]) -> None:
        self.kind = kind
        self.group = group
        self._builtin = builtin
        self._methods = methods
        self._classes: dict[str, T] = {}
        self._sources: dict[str, str] = {}
        self._broken: dict[str, tuple[str, BaseException]] = {}
        self._loaded = False
        self._current_source = "builtin"

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: `@generators.register("marginals")`."""

        def decorate(cls: T) -> T:
            self._add(name, cls, self._current_source)
            return cls

        return decorate

    def _add(self, name: str, cls: T, source: str) -> None:
        if not NAME_PATTERN.match(name):
            raise RegistryError(
                f"{self.kind} name {name!r} must be lowercase words joined by dots or underscores, "
                "like 'sdv.gaussian_copula'"
            )
        if name in self._classes:
            raise DuplicateError(
                f"{self.kind} {name!r} is registered twice ({self._sources[name]} and {source}); rename one"
            )
        if getattr(cls, "name", None) != name:
            raise RegistryError(
                f"{self.kind} class {cls.__qualname__} must have `name = {name!r}` to be registered as {name!r}"
            )
        missing = [m for m in self._methods if not callable(getattr(cls, m, None))]
        if missing:
            raise RegistryError(f"{self.kind} {name!r} ({cls.__qualname__}) lacks {', '.join(missing)}")
        if cls.__init__ is object.__init__:
            raise RegistryError(
                f"{self.kind} {name!r} ({cls.__qualname__}) has no __init__ of its own; define one with keyword-only "
                "parameters (`def __init__(self) -> None: pass` if it takes none)"
            )
        for param in inspect.signature(cls.__init__).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise RegistryError(
                    f"{self.kind} {name!r}: __init__ may not take *args or **kwargs; name every parameter"
                )
        self._classes[name] = cls
        self._sources[name] = source

    def load(self) -> None:
        """Import the built-in modules and the installed entry points, once."""
        if self._loaded:
            return
        self._loaded = True
        for module in self._builtin:
            importlib.import_module(module)
        for ep in entry_points(group=self.group):
            dist = getattr(ep, "dist", None)
            source = f"{dist.name}=={dist.version}" if dist is not None else ep.value
            try:
                cls = ep.load()
                self._add(ep.name, cls, source)
            except DuplicateError:
                raise
            except Exception as exc:  # a broken or invalid plugin must not hide the others
                self._broken[ep.name] = (source, exc)

    def refresh(self) -> None:
        """Forget entry points so newly installed plugins are found (built-ins stay)."""
        for name in [n for n, s in self._sources.items() if s != "builtin"]:
            del self._classes[name], self._sources[name]
        self._broken.clear()
        self._loaded = False

    def get(self, name: str) -> T:
        self.load()
        if name in self._classes:
            return self._classes[name]
        if name in self._broken:
            source, exc = self._broken[name]
            if isinstance(exc, RegistryError):
                raise RegistryError(f"{self.kind} {name!r} from {source} is not a valid plugin: {exc}") from exc
            raise RegistryError(f"{self.kind} {name!r} from {source} failed to import: {exc!r}") from exc
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise RegistryError(f"unknown {self.kind} {name!r}; {hint}known: {', '.join(self.names())}")

    def names(self) -> list[str]:
        self.load()
        return sorted(self._classes)

    def source(self, name: str) -> str:
        self.get(name)
        return self._sources[name]

    def broken(self) -> dict[str, str]:
        """Plugins that failed to import, with the error."""
        self.load()
        return {n: f"{s}: {e if isinstance(e, RegistryError) else repr(e)}" for n, (s, e) in self._broken.items()}

    def broken_kinds(self) -> dict[str, str]:
        """Plugins that failed to load, with the kind of error only (no library message)."""
        self.load()
        return {n: type(e).__name__ for n, (_, e) in self._broken.items()}


generators: Registry[type] = Registry(
    "generator", "suite.generators", builtin=("suite.generators",), methods=("fit", "sample")
)
checks: Registry[type] = Registry(
    "check", "suite.checks", builtin=("suite.metrics", "suite.attacks"), methods=("evaluate",)
)
