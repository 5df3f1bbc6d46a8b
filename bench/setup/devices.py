"""A bench description's sections made drivers: the one place a ``[terminal] protocol``, an
``[actuator] kind`` or a ``[power] driver`` name becomes an opened driver (drivers know nothing of
bench.toml; setup knows both)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from posbench.drivers import registry
from posbench.drivers.power import Ask, KoradSupply, LcusRelay, ManualPower, PowerSwitch, stdin_ask

if TYPE_CHECKING:
    from posbench.drivers.actuator.base import Actuator
    from posbench.drivers.power.usb_hub import HubPortPower
    from posbench.drivers.terminal import Terminal
    from posbench.setup.config import ActuatorSection, BenchConfig, PowerSection, TerminalSection


def open_terminal(section: TerminalSection, model: str | None = None) -> Terminal:
    """The driver for bench.toml's ``[terminal]`` section (``posbench.setup.config.TerminalSection``),
    opened: its protocol's ``adapter.open_terminal`` (``posbench.drivers.registry``). ``model`` is
    the unit's model from ``[unit]`` (ZVT and Caisse-AP do not report one)."""
    return registry.open_terminal(section, model)


def open_unit(config: BenchConfig) -> Terminal:
    """The unit of a bench description, opened: its ECR link (``open_terminal``), or, on a bench
    without ``[terminal]``, the card reader that is itself the unit (its reader profile says how
    the bench finds it: ``posbench.drivers.reader_unit.ReaderUnit``)."""
    if config.terminal is not None:
        return open_terminal(config.terminal, config.unit.model)
    from posbench.drivers.reader_unit import ReaderUnit
    from posbench.setup.profile import profile_for_bench
    profile = profile_for_bench(config)
    assert profile is not None and profile.reader is not None  # posbench.setup.config settles it
    spec = profile.reader
    usb_id = tuple(int(part, 16) for part in spec.usb.split(":")) if spec.usb else None
    return ReaderUnit(spec.interface, profile.model, usb_backend=config.usb.backend if config.usb else None,
                      usb_id=usb_id, nfc_path=config.nfc.path if config.nfc else None,  # type: ignore[arg-type]
                      serial=config.unit.serial or "", boot_timeout=max(3 * profile.boot_time_s, 5.0))


def open_actuator(section: ActuatorSection, say: Callable[[str], None] | None = None,
                  ask: Callable[[str, float], str | None] | None = None) -> Actuator:
    """The actuator a validated ``[actuator]`` section (``posbench.setup.config.ActuatorSection``)
    names. ``say`` and ``ask`` reach the technician (default: the controlling terminal;
    ``ActuatorError`` when there is none, ``posbench.core.console.no_terminal``)."""
    if section.kind == "virtual":
        from posbench.setup.config import split_host_port
        from posbench.drivers.actuator.virtual import VirtualActuator
        assert section.address is not None  # posbench.setup.config settles it for a virtual actuator
        return VirtualActuator(split_host_port(section.address))
    from posbench.drivers.actuator.base import ActuatorError
    from posbench.drivers.actuator.manual import ManualActuator
    if say is None or ask is None:
        from posbench.core.console import announce, no_terminal, prompt
        if why := no_terminal():
            raise ActuatorError("actuator", "prompting the technician", f"nobody can be prompted: {why}; run "
                                "it from a terminal, or use an actuator that needs no person")
        say, ask = say or announce, ask or prompt
    return ManualActuator(say, ask)


def open_usb_hub(section: PowerSection, usb_backend: str | None) -> HubPortPower:
    """The switch of a ``[power] driver = "usb-hub"`` section, with its hub (``.hub``) to ask."""
    from posbench.drivers.usb.backend import open_backend
    from posbench.drivers.power.usb_hub import HubPortPower
    backend = open_backend(usb_backend or "libusb1")
    try:
        return HubPortPower(backend, section.hub, section.channel)
    except BaseException:
        getattr(backend, "close", lambda: None)()  # no hub there: the backend is not left open
        raise


def _port(section: PowerSection) -> str:
    if section.port is None:  # PowerSection refuses this when bench.toml is read
        raise ValueError(f"the {section.driver} driver needs a port")
    return section.port


POWER_DRIVERS: dict[str, Callable[[PowerSection, str | None, Ask | None], PowerSwitch]] = {
    "korad": lambda section, usb_backend, ask: KoradSupply(_port(section), section.channel).open(),
    "lcus-relay": lambda section, usb_backend, ask: LcusRelay(_port(section), section.channel).open(),
    "usb-hub": lambda section, usb_backend, ask: open_usb_hub(section, usb_backend),
    "manual": lambda section, usb_backend, ask: ManualPower(ask or stdin_ask),
}
"""The one place a ``[power] driver`` name becomes a driver: name -> factory(section,
usb_backend, ask). bench.toml's allowed names (``posbench.setup.config.PowerSection``) are these."""


def open_power(section: PowerSection, usb_backend: str | None = None, ask: Ask | None = None) -> PowerSwitch:
    """The opened ``PowerSwitch`` of a validated ``[power]`` section
    (``posbench.setup.config.PowerSection``); ``usb_backend`` is ``[usb] backend`` (where a hub is
    reached), ``ask`` how the technician is asked (default ``stdin_ask``). Close it after use."""
    return POWER_DRIVERS[section.driver](section, usb_backend, ask)
