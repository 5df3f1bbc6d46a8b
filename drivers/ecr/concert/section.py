"""Concert V2's ``[terminal]``: a serial port, its line settings and the request's fixed fields."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from posbench.drivers.ecr.section import EcrSection


class Section(EcrSection):
    line: Literal["8N1", "7E1"] = "8N1"
    """Concert: data bits, parity and stop bits of the link (8N1, or 7E1 on some terminals)."""
    delay_code: str = Field("A010", pattern=r"^A01[01]$")
    """Concert: the request's delay field that asks for the answer at the end of the sale."""
    pos_number: str = Field("01", pattern=r"^[0-9]{2}$")
    """Concert: the POS (checkout) number sent with each sale."""

    LINK = "serial"
