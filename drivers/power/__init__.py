"""Bench power: switch the unit (``PowerSwitch``), measure its supply (``PowerMonitor``).

One driver per module: ``korad`` (KA3005P bench supply), ``lcus_relay`` (LCUS-1 USB relay),
``manual`` (the technician), ``usb_hub`` (a port of a USB hub; its protocol is in
``drivers/usb/hub.py``). ``posbench.setup.devices.open_power`` picks one by the ``[power]
driver`` name.
"""
from __future__ import annotations

from .errors import (MonitorStuck, OperatorNotConfirmed, OperatorSkipped, OperatorTimeout,
                     PowerSwitchFailed, SupplyNotResponding, SupplyProtocolError)
from .korad import KoradSupply, Setpoint
from .lcus_relay import LcusRelay
from .manual import Ask, ManualPower, stdin_ask
from .protocols import PowerMonitor, PowerSwitch, Reading
from .trace import Trace, monitor


__all__ = ["Ask", "KoradSupply", "LcusRelay", "ManualPower", "MonitorStuck",
           "OperatorNotConfirmed", "OperatorSkipped", "OperatorTimeout", "PowerMonitor",
           "PowerSwitch", "PowerSwitchFailed", "Reading", "SupplyNotResponding",
           "SupplyProtocolError", "Setpoint", "Trace", "monitor", "stdin_ask"]
