"""Caisse-AP's ``[terminal]``: a TCP address ("<host>" alone means its usual port, 8888)."""
from __future__ import annotations

from posbench.drivers.ecr.section import EcrSection

from .client import TCP_PORT


class Section(EcrSection):
    LINK = "tcp"
    TCP_PORT = TCP_PORT
