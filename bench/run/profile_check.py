"""A DUT profile checked against the installed HIL suite (``posbench.hil``), without a bench:
every measurement a test declares gets a limit from the profile or the profile's reason why the
model cannot tell it (``[unknown]``). A key in neither is a ``ConfigError`` naming the profile
file, the key and the test, found before any device is touched."""
from __future__ import annotations

import importlib
import itertools
import pkgutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest

from posbench.core.errors import ConfigError
from posbench.spec.measures import Bound, Declaration, bind, declaration

_PARAMETER_SET = type(pytest.param(None))
"""pytest's class of ``pytest.param(...)`` values in a parametrization."""


@dataclass(frozen=True)
class ProfileCheck:
    """What a profile judges of the HIL suite's declared measurements."""

    judged: list[str] = field(default_factory=list)
    """``<test id>::<measurement>`` with a limit the unit's protocol can be measured against."""
    not_judged: dict[str, str] = field(default_factory=dict)
    """``<test id>::<measurement>`` -> why not (the profile cannot know it, the protocol cannot tell
    it, the profile states no limit)."""
    cannot_tell: list[str] = field(default_factory=list)
    """Of ``not_judged``: those the unit's protocol cannot tell (the profile's ``[unknown]``, or a
    capability the protocol lacks), as opposed to those the profile states no limit for."""


def hil_tests() -> Iterator[tuple[str, Declaration, dict]]:
    """Every declared test of the installed HIL suite, once per parametrization: its id (as
    pytest names it, e.g. ``test_read_paths.py::test_card_reads_in_sales[tap]``), its
    declaration and its parameters."""
    import posbench.hil
    for info in sorted(pkgutil.iter_modules(posbench.hil.__path__), key=lambda i: i.name):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"posbench.hil.{info.name}")
        module_marks = list(getattr(module, "pytestmark", []))
        for name, fn in vars(module).items():
            if not name.startswith("test") or (decl := declaration(fn)) is None:
                continue
            for ident, params in _parametrizations(module_marks + list(getattr(fn, "pytestmark", []))):
                yield f"{info.name}.py::{name}" + (f"[{ident}]" if params else ""), decl, params


def _parametrizations(marks: list) -> list[tuple[str, dict]]:
    """The parameter sets ``@pytest.mark.parametrize`` marks give a test (their product), each
    with its pytest id (the mark's ``ids`` where it gives them)."""
    axes: list[list[tuple[str, dict]]] = []
    for mark in marks:
        if mark.name != "parametrize":
            continue
        names = mark.args[0] if mark.args else mark.kwargs["argnames"]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        values = mark.args[1] if len(mark.args) > 1 else mark.kwargs["argvalues"]
        ids = mark.kwargs.get("ids") or [None] * len(values)
        axis = []
        for value, ident in zip(values, ids):
            value = value.values if isinstance(value, _PARAMETER_SET) else (value,) if len(names) == 1 else value
            axis.append((ident or "-".join(str(v) for v in value), dict(zip(names, value))))
        axes.append(axis)
    return [("-".join(i for i, _ in combo), dict(itertools.chain.from_iterable(d.items() for _, d in combo)))
            for combo in itertools.product(*axes)]


def check_profile(profile, terminal=None) -> ProfileCheck:
    """Bind every declared measurement of the HIL suite to ``profile``
    (``posbench.setup.profile.Profile``); ``ConfigError`` (profile file, key, test) for a limit it has
    neither in ``[limits]`` nor in ``[unknown]``. ``terminal``: bench.toml's ``[terminal]``
    section; a measurement needing what its protocol cannot answer counts as not judged."""
    from posbench.drivers.terminal import Unsupported
    capabilities = capabilities_of(terminal) if terminal is not None else None

    def lacks(capability: str) -> str | None:
        if capabilities is None or capability in capabilities:
            return None
        return str(Unsupported(terminal.protocol, capability))

    check = ProfileCheck()
    before = set(sys.modules)
    keys: set[str] = set()
    try:
        for test, decl, params in hil_tests():
            if not decl.applies_to(profile):
                continue  # a terminal's test on a reader profile: not collected for one
            keys |= {m.limit for m in decl.measures if isinstance(m.limit, str)}
            bound: dict[str, Bound] = bind(decl, profile, params, test)
            for name, b in bound.items():
                key = f"{test}::{name}"
                if why := b.why_not(lacks):
                    check.not_judged[key] = why
                    if b.unknowable or replace(b, unjudged="").why_not(lacks):
                        check.cannot_tell.append(key)
                else:
                    check.judged.append(key)
    finally:  # pytest imports the suite's modules itself, rewriting their asserts: not from sys.modules
        for name in set(sys.modules) - before:
            if name.startswith("posbench.hil."):
                del sys.modules[name]
    if stray := sorted(set(profile.unknown) - keys):
        raise ConfigError(str(profile.source or f"the DUT profile of {profile.model}"), f"unknown.{stray[0]}",
                          f"no HIL test judges a measurement by this limit (the limits they use: "
                          f"{', '.join(sorted(keys))})")
    return check


def capabilities_of(section) -> frozenset[str]:
    """What the driver of bench.toml's ``[terminal]`` (``posbench.setup.config.TerminalSection``) can
    answer, without opening it (ZVT over TCP has no link layer to count)."""
    from posbench.drivers import registry
    return registry.capabilities(section)
