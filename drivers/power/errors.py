"""The typed errors of bench power: every one a ``BenchError`` (the bench's own power link or its
technician failed, never the unit)."""
from __future__ import annotations

from posbench.core.errors import BenchError


class SupplyNotResponding(BenchError):
    """The bench supply did not answer a query in time (its link is down, not the unit)."""


class SupplyProtocolError(BenchError):
    """The bench supply answered bytes that are not a valid answer to the command sent."""


class PowerSwitchFailed(BenchError):
    """A power device accepted a command but its read-back shows it did not act on it."""


class OperatorNotConfirmed(BenchError):
    """The technician did not confirm a manual power step (the bench cannot go on alone)."""


class OperatorTimeout(OperatorNotConfirmed):
    """No answer from the technician within the prompt's timeout."""


class OperatorSkipped(OperatorNotConfirmed):
    """The technician answered "skip" (or declined) instead of doing the power step."""


class MonitorStuck(BenchError):
    """A measurement monitor's sampling thread did not stop within its deadline."""
