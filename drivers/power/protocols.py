"""What a test may ask of bench power: switch it (``PowerSwitch``), measure it (``PowerMonitor``,
one ``Reading`` at a time)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@runtime_checkable
class PowerSwitch(Protocol):
    """Switches the unit's power. ``name`` says which device does it (for messages and reports)."""

    name: str

    def on(self) -> None:
        """Apply power to the unit."""

    def off(self) -> None:
        """Remove power from the unit."""

    def is_on(self) -> bool:
        """True if the unit is powered (read back where the device can, else the last command)."""

    def cycle(self, off_s: float) -> None:
        """Power off, wait ``off_s`` seconds, power on."""

    def close(self) -> None:
        """Release the device (a port, a USB handle); the unit's power stays as it is."""


@dataclass(frozen=True)
class Reading:
    """One measurement: ``volts`` (V), ``amps`` (A), taken at ``t`` (``time.monotonic`` seconds)."""

    volts: float
    amps: float
    t: float


@runtime_checkable
class PowerMonitor(Protocol):
    """Measures the unit's supply."""

    def read(self) -> Reading:
        """Volts and amps delivered now."""

