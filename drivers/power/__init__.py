"""Bench power: switch the unit (``PowerSwitch``), measure its supply (``PowerMonitor``).

One driver per module: ``korad`` (KA3005P bench supply), ``lcus_relay`` (LCUS-1 USB relay),
``manual`` (the technician), ``usb_hub`` (a port of a USB hub; its protocol is in
``drivers/usb/hub.py``). ``open_power`` picks one by the ``[power] driver`` name.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import (MonitorStuck, OperatorNotConfirmed, OperatorSkipped, OperatorTimeout,
                     PowerSwitchFailed, SupplyNotResponding, SupplyProtocolError)
from .korad import KoradSupply, Setpoint
from .lcus_relay import LcusRelay
from .manual import Ask, ManualPower, stdin_ask
from .protocols import PowerMonitor, PowerSwitch, Reading
from .trace import Trace, monitor

if TYPE_CHECKING:
    from posbench.setup.config import PowerSection

    from .usb_hub import HubPortPower

__all__ = ["Ask", "KoradSupply", "LcusRelay", "ManualPower", "MonitorStuck",
           "OperatorNotConfirmed", "OperatorSkipped", "OperatorTimeout", "PowerMonitor",
           "PowerSwitch", "PowerSwitchFailed", "Reading", "SupplyNotResponding",
           "SupplyProtocolError", "Setpoint", "Trace", "monitor", "open_power", "open_usb_hub", "POWER_DRIVERS", "stdin_ask"]


def open_usb_hub(section: PowerSection, usb_backend: str | None) -> HubPortPower:
    """The switch of a ``[power] driver = "usb-hub"`` section, with its hub (``.hub``) to ask."""
    from posbench.drivers.usb.backend import open_backend
    from .usb_hub import HubPortPower
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
