"""ZVT's ``[terminal]``: a serial port or a TCP address (the PT listens on 20007), and the PT's
password."""
from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from posbench.drivers.ecr.section import EcrSection

from .link import TCP_PORT


class Section(EcrSection):
    password: str = Field("123456", pattern=r"^[0-9]{6}$")
    """ZVT password (6 digits) sent with registration, reversal, end of day."""

    LINK = "either"
    TCP_PORT = TCP_PORT  # a host alone: the port a PT listens on (20007)
    FROM_SIM: ClassVar[tuple[str, ...]] = ("password", "currency", *EcrSection.FROM_SIM)

    @property
    def url(self) -> str:
        """The serial port, or ``tcp://<host>:<port>``."""
        return self.port or f"tcp://{self.address}"
