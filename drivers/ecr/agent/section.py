"""The agent protocol's ``[terminal]``: a serial port (or URL), nothing of its own."""
from __future__ import annotations

from posbench.drivers.ecr.section import EcrSection


class Section(EcrSection):
    LINK = "serial"
