"""Physical actions on the unit: swiping, tapping and inserting test cards.

``open_actuator`` is the one place an ``[actuator] kind`` becomes a driver: ``manual`` (the
technician, prompted), ``virtual`` (the virtual bench's control port).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from posbench.setup.config import ActuatorSection

    from .base import Actuator


def open_actuator(section: ActuatorSection, say: Callable[[str], None] | None = None,
                  ask: Callable[[str, float], str | None] | None = None) -> Actuator:
    """The actuator a validated ``[actuator]`` section (``posbench.setup.config.ActuatorSection``)
    names. ``say`` and ``ask`` reach the technician (default: the controlling terminal;
    ``ActuatorError`` when there is none, ``posbench.core.console.no_terminal``)."""
    if section.kind == "virtual":
        from posbench.setup.config import split_host_port
        from .virtual import VirtualActuator
        assert section.address is not None  # posbench.setup.config settles it for a virtual actuator
        return VirtualActuator(split_host_port(section.address))
    from .base import ActuatorError
    from .manual import ManualActuator
    if say is None or ask is None:
        from posbench.core.console import announce, no_terminal, prompt
        if why := no_terminal():
            raise ActuatorError("actuator", "prompting the technician", f"nobody can be prompted: {why}; run "
                                "it from a terminal, or use an actuator that needs no person")
        say, ask = say or announce, ask or prompt
    return ManualActuator(say, ask)
