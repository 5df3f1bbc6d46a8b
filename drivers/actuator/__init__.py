"""Physical actions on the unit: swiping, tapping and inserting test cards.

``open_actuator`` is the one place an ``[actuator] kind`` becomes a driver: ``manual`` (the
technician, prompted), ``virtual`` (the virtual bench's control port).
"""
from __future__ import annotations


def open_actuator(section, say=None, ask=None):
    """The actuator a validated ``[actuator]`` section (``posbench.config.ActuatorSection``)
    names. ``say`` and ``ask`` reach the technician (default: the controlling terminal)."""
    if section.kind == "virtual":
        from posbench.config import split_host_port
        from .virtual import VirtualActuator
        return VirtualActuator(split_host_port(section.address))
    from .manual import ManualActuator
    if say is None or ask is None:
        from posbench.console import announce, prompt
        say, ask = say or announce, ask or prompt
    return ManualActuator(say, ask)
