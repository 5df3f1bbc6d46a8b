"""ECR protocols by name: the one place a ``[terminal] protocol`` (or ``posbench sim --protocol``)
name meets its driver package and its virtual terminal.

Each protocol is a driver package ``posbench.drivers.ecr.<package>`` (modules ``section``,
``adapter``, ``codes``, ``check``, ``probe``; see ``posbench.drivers.ecr``) and a virtual
terminal module of the virtual bench; both are loaded by name (``importlib``), as nfcpy and
labgrid find their drivers, so nothing else names a protocol. Adding a protocol is a package, a
virtual terminal and one line in ``ECR_PROTOCOLS``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from posbench.drivers.ecr.section import EcrSection
    from posbench.drivers.probing import SerialProbe, TcpProbe
    from posbench.drivers.terminal import SaleResult, Terminal


@dataclass(frozen=True)
class Entry:
    package: str
    """The driver package, under ``posbench.drivers.ecr``."""
    virtual: str
    """The virtual terminal's module, under ``posbench.sim``."""
    variants: tuple[str, ...] = ()
    """Further names the virtual bench knows it by (ZVT over TCP: "zvt-tcp")."""


ECR_PROTOCOLS: dict[str, Entry] = {
    "agent": Entry("agent", "ecr.agent"),
    "zvt": Entry("zvt", "ecr.zvt", ("zvt-tcp",)),
    "concert": Entry("concert", "ecr.concert"),
    "caisse-ap": Entry("caisse_ap", "ecr.caisse_ap"),
}
"""Protocol name (bench.toml's ``[terminal] protocol``) -> its driver package and virtual terminal,
in the order discover asks a port and the virtual bench lists them."""
DEFAULT = next(iter(ECR_PROTOCOLS))
"""The protocol of a ``[terminal]`` that names none."""


class Codes(Protocol):
    """What a protocol's ``codes`` module tells the diagnosis: the causes its codes point to."""

    SALE_CAUSES: tuple[str, ...]
    """Causes a sale the unit failed itself can speak to."""
    STATUS_CAUSES: tuple[str, ...]
    """Causes a terminal status code or lock bit can speak to."""

    def sale_failure_cause(self, sale: SaleResult) -> tuple[str, str] | None: ...
    def sale_read_failure(self, sale: SaleResult, technology: str) -> str: ...
    def read_failure_words(self, code: str) -> str | None: ...
    def saw_no_card(self, sale: SaleResult) -> bool: ...
    def status_cause(self, code: int) -> tuple[str, str] | None: ...
    def lock_cause(self, lock: str) -> tuple[str, str] | None: ...


def names() -> tuple[str, ...]:
    """The protocols bench.toml may name."""
    return tuple(ECR_PROTOCOLS)


def sim_names() -> tuple[str, ...]:
    """The protocols the virtual bench may speak: each protocol, then its variants."""
    return tuple(n for name, e in ECR_PROTOCOLS.items() for n in (name, *e.variants))


def protocol_of(name: str) -> str:
    """The protocol a virtual bench's protocol name is a variant of ("zvt-tcp" -> "zvt");
    ``KeyError`` for an unknown one."""
    for protocol, entry in ECR_PROTOCOLS.items():
        if name == protocol or name in entry.variants:
            return protocol
    raise KeyError(name)


def layer(protocol: str, module: str) -> ModuleType:
    """Module ``module`` ("section", "adapter", "codes", "check", "probe") of ``protocol``'s
    driver package; ``KeyError`` for an unknown protocol."""
    return importlib.import_module(f"posbench.drivers.ecr.{ECR_PROTOCOLS[protocol].package}.{module}")


def virtual(name: str) -> ModuleType:
    """The virtual terminal module of a protocol or variant (``posbench sim --protocol``)."""
    return importlib.import_module(f"posbench.sim.{ECR_PROTOCOLS[protocol_of(name)].virtual}")


def section_model(protocol: str) -> type[EcrSection]:
    """The pydantic model of ``protocol``'s ``[terminal]`` fields."""
    return cast("type[EcrSection]", layer(protocol, "section").Section)


def section_of(terminal: Any) -> EcrSection:
    """A validated ``[terminal]`` section (``posbench.setup.config.TerminalSection``) as its
    protocol's own model."""
    return section_model(terminal.protocol).model_validate(terminal.model_dump())


def codes(protocol: str) -> Codes:
    return cast(Codes, layer(protocol, "codes"))


def open_terminal(terminal: Any, model: str | None = None) -> Terminal:
    """The driver of a validated ``[terminal]`` section, opened; ``model`` is ``[unit] model``."""
    return cast("Terminal", layer(terminal.protocol, "adapter").open_terminal(section_of(terminal), model))


def capabilities(terminal: Any) -> frozenset[str]:
    """What the driver of a ``[terminal]`` section can answer, without opening it."""
    return cast("frozenset[str]", layer(terminal.protocol, "adapter").capabilities(section_of(terminal)))


def cannot_tell_apart(protocol: str) -> str:
    """What ``protocol`` is known not to tell apart ("" for none, or a virtual-bench variant)."""
    if protocol not in ECR_PROTOCOLS:
        return ""
    return cast(str, layer(protocol, "adapter").CANNOT_TELL_APART)


def serial_probes() -> tuple[SerialProbe, ...]:
    """Every protocol's serial probes (``posbench discover --probe``), in registry order."""
    return tuple(p for name in ECR_PROTOCOLS for p in layer(name, "probe").SERIAL)


def tcp_probes() -> tuple[TcpProbe, ...]:
    """Every protocol's TCP probes, in registry order."""
    return tuple(p for name in ECR_PROTOCOLS for p in layer(name, "probe").TCP)
