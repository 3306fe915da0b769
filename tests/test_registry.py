"""The registry: validated names, no shadowing, plugins from entry points, broken plugins recorded."""

from __future__ import annotations

from types import SimpleNamespace
from typing import ClassVar

import pytest

import suite.registry as registry_module
from suite.registry import Registry, RegistryError, checks, generators


def _fresh() -> Registry:
    return Registry("generator", "suite.test_generators", builtin=(), methods=("fit", "sample"))


class Good:
    name: ClassVar[str] = "acme.copy"

    def __init__(self, *, k: int = 1) -> None:
        self.k = k

    def fit(self, train, metadata):
        return self

    def sample(self, n, *, seed):
        return None


def test_register_and_get():
    reg = _fresh()
    reg.register("acme.copy")(Good)
    assert reg.get("acme.copy") is Good and reg.names() == ["acme.copy"] and reg.source("acme.copy") == "builtin"


@pytest.mark.parametrize("bad", ["Acme", "acme..copy", "1acme", "acme-copy"])
def test_bad_names_are_refused(bad):
    with pytest.raises(RegistryError, match="lowercase"):
        _fresh().register(bad)(Good)


def test_duplicates_and_mismatched_names_are_errors():
    reg = _fresh()
    reg.register("acme.copy")(Good)
    with pytest.raises(RegistryError, match="registered twice"):
        reg.register("acme.copy")(Good)
    with pytest.raises(RegistryError, match="must have `name"):
        reg.register("acme.other")(Good)


def test_varargs_constructor_and_missing_methods_are_refused():
    class Loose(Good):
        name: ClassVar[str] = "acme.loose"

        def __init__(self, **kwargs) -> None:
            pass

    class Lacking:
        name: ClassVar[str] = "acme.lacking"

        def fit(self, train, metadata):
            return self

    with pytest.raises(RegistryError, match="kwargs"):
        _fresh().register("acme.loose")(Loose)
    with pytest.raises(RegistryError, match="lacks sample"):
        _fresh().register("acme.lacking")(Lacking)


def test_entry_point_plugins_load_and_broken_ones_are_recorded(monkeypatch):
    def boom():
        raise ImportError("no module named acme_heavy")

    eps = [
        SimpleNamespace(
            name="acme.copy", value="acme:Good", dist=SimpleNamespace(name="acme", version="1.2"), load=lambda: Good
        ),
        SimpleNamespace(
            name="acme.broken", value="acme:Broken", dist=SimpleNamespace(name="acme", version="1.2"), load=boom
        ),
    ]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: eps if group == "suite.test_generators" else [])
    reg = _fresh()
    assert reg.names() == ["acme.copy"]
    assert reg.source("acme.copy") == "acme==1.2"
    assert "acme_heavy" in reg.broken()["acme.broken"]
    with pytest.raises(RegistryError, match="failed to import"):
        reg.get("acme.broken")


def test_unknown_name_suggests_the_closest():
    with pytest.raises(RegistryError, match="did you mean 'marginals'"):
        generators.get("marginal")


def test_builtins_are_registered():
    assert {"identity", "holdout", "uniform", "marginals", "sdv.gaussian_copula"} <= set(generators.names())
    assert {"collisions", "dcr", "fidelity"} <= set(checks.names())


def test_refresh_forgets_plugins_but_keeps_builtins(monkeypatch):
    ep = SimpleNamespace(
        name="acme.copy", value="acme:Good", dist=SimpleNamespace(name="acme", version="1.2"), load=lambda: Good
    )
    found = [ep]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: list(found))
    reg = _fresh()

    class Builtin(Good):
        name: ClassVar[str] = "local"

    reg.register("local")(Builtin)
    assert reg.names() == ["acme.copy", "local"]
    found.clear()
    reg.refresh()
    assert reg.names() == ["local"]


class NoInit:
    """A plugin class that forgot `__init__`: its signature is object's (*args, **kwargs)."""

    name: ClassVar[str] = "acme.noinit"

    def fit(self, train, metadata):
        return self

    def sample(self, n, *, seed):
        return None


def test_a_plugin_without_its_own_init_is_listed_as_broken_not_fatal(monkeypatch, capsys):
    ep = SimpleNamespace(
        name="acme.noinit", value="acme:NoInit", dist=SimpleNamespace(name="acme", version="1.2"), load=lambda: NoInit
    )
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [ep] if group == "suite.generators" else [])
    generators.refresh()
    try:
        from suite.cli import main

        assert main(["list"]) == 0  # every other command still works
        line = next(x for x in capsys.readouterr().out.splitlines() if "acme.noinit" in x)
        assert "BROKEN" in line and "acme==1.2" in line and "no __init__ of its own" in line
        assert "marginals" in generators.names()
        with pytest.raises(RegistryError, match="acme==1.2 is not a valid plugin"):
            generators.get("acme.noinit")
    finally:
        monkeypatch.undo()
        generators.refresh()


def test_a_duplicate_entry_point_stays_an_error(monkeypatch):
    ep = SimpleNamespace(
        name="acme.copy", value="acme:Good", dist=SimpleNamespace(name="acme", version="1.2"), load=lambda: Good
    )
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [ep, ep])
    with pytest.raises(RegistryError, match="registered twice"):
        _fresh().names()
