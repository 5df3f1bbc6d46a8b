"""The ``[terminal]`` fields every ECR protocol has, and how a protocol declares its link.

A protocol's own ``section`` module subclasses ``EcrSection`` as ``Section``: the fields only it
reads (with their validation) and its link: ``LINK`` "serial" (a serial port or URL only), "tcp"
(an address only) or "either"; ``TCP_PORT`` the port a host alone means (None: the address must
name it). ``posbench.setup.config.TerminalSection`` is built from every protocol's fields.
"""
from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class EcrSection(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    protocol: str
    """ECR protocol the unit speaks (``posbench.drivers.registry``)."""
    port: str | None = Field(None, min_length=1)
    """pyserial port or URL of the unit's ECR link (/dev/ttyUSB0, socket://h:p, rfc2217://h:p)."""
    address: str | None = None
    """<host>:<port> of a unit reached over TCP."""
    currency: str = Field("978", pattern=r"^[0-9]{3}$")
    """ISO 4217 numeric currency code (3 digits; 978 = EUR)."""
    baudrate: int = Field(9600, gt=0)
    reply_timeout: float = Field(3.0, gt=0, le=120)
    """Seconds to wait for a reply to a short command."""
    sale_timeout: float = Field(40.0, gt=0, le=600)
    """Seconds to wait for a sale to finish (the unit's host timeout plus margin)."""
    boot_timeout: float = Field(30.0, gt=0, le=600)
    """Seconds to wait for the unit to answer again after a reboot."""

    LINK: ClassVar[str] = "serial"
    """"serial", "tcp" or "either": how the unit's ECR link is reached."""
    TCP_PORT: ClassVar[int | None] = None
    """The TCP port an address of a host alone means (None: the address names its port)."""
    FROM_SIM: ClassVar[tuple[str, ...]] = ("reply_timeout", "sale_timeout", "boot_timeout")
    """Keys ``posbench discover`` copies from a virtual bench's own ``[terminal]`` (no probe finds them)."""


def protocol_fields() -> tuple[str, ...]:
    """The fields every protocol has (the rest are a protocol's own)."""
    return tuple(EcrSection.model_fields)
