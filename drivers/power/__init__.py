"""Bench power: switch the unit (``PowerSwitch``), measure its supply (``PowerMonitor``).

One driver per module: ``korad`` (KA3005P bench supply), ``lcus_relay`` (LCUS-1 USB relay),
``manual`` (the technician). USB hub port power lives in ``drivers/usb/hub.py``.
"""
from __future__ import annotations

from .errors import (MonitorStuck, OperatorNotConfirmed, OperatorSkipped, OperatorTimeout,
                     PowerSwitchFailed, SupplyNotResponding, SupplyProtocolError)
from .korad import KoradSupply
from .lcus_relay import LcusRelay
from .manual import Ask, ManualPower, stdin_ask
from .protocols import PowerMonitor, PowerSwitch, Reading
from .trace import Trace, monitor

__all__ = ["Ask", "KoradSupply", "LcusRelay", "ManualPower", "MonitorStuck",
           "OperatorNotConfirmed", "OperatorSkipped", "OperatorTimeout", "PowerMonitor",
           "PowerSwitch", "PowerSwitchFailed", "Reading", "SupplyNotResponding",
           "SupplyProtocolError", "Trace", "monitor", "open_power", "stdin_ask"]


def open_power(driver: str, port: str | None = None, channel: int = 1, *,
               ask: Ask | None = None, timeout_s: float = 120.0) -> PowerSwitch:
    """The ``PowerSwitch`` a ``[power]`` section names: "korad", "lcus-relay" or "manual"
    (``ask`` defaults to ``stdin_ask``). "usb-hub" is built by ``posbench.drivers.usb.hub``."""
    if driver in ("korad", "lcus-relay") and not port:
        raise ValueError(f"power driver {driver!r} needs a port")
    if driver == "korad":
        return KoradSupply(port, channel).open()
    if driver == "lcus-relay":
        return LcusRelay(port, channel).open()
    if driver == "manual":
        return ManualPower(ask or stdin_ask, timeout_s)
    raise ValueError(f"open_power cannot build power driver {driver!r}; "
                     "known here: korad, lcus-relay, manual")
