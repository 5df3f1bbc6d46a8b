"""The virtual ZVT PT (``posbench sim --protocol zvt|zvt-tcp``): ``terminal`` (the PT's
commands on the shared virtual unit), ``wire`` (its waits, codes and BMP helpers, its ECR port),
``server`` (its TCP end). What the virtual bench asks of a protocol's virtual terminal
(``posbench.drivers.registry.virtual``) is here."""
from __future__ import annotations

from posbench.setup.profile import Profile

from posbench.sim.unit.records import TerminalTiming
from posbench.sim.ecr.zvt.terminal import VirtualZvtTerminal
from posbench.sim.ecr.zvt.wire import CARD_TIMEOUT_S

__all__ = ["CARD_TIMEOUT_S", "VirtualZvtTerminal", "front_end", "serial_problem", "terminal_toml", "unit_serial"]


PASSWORD = "123456"
"""The virtual PT's password (bench.toml's default)."""
SALE_TIMEOUT_S = 5.0
"""bench.toml's ``sale_timeout`` for this virtual terminal (seconds): BMP 01 cuts the PT's host wait short."""
TERMINAL_ID_PREFIX = "52"
"""ZVT carries the terminal id as 8 BCD digits (BMP 29)."""


def unit_serial(serial: str, given: bool) -> str:
    """A ZVT PT reports its serial number in BCD (TLV 1F42): digits only; BCD packs two digits a
    byte, so "0" leads an odd count of a serial made up (not ``given``)."""
    digits = "".join(c for c in serial if c.isdigit())
    return "0" + digits if not given and len(digits) % 2 else digits


def serial_problem(serial: str) -> str | None:
    """Why ``posbench sim --unit SERIAL`` cannot be this PT's serial number (None: it can)."""
    return None if serial.isdigit() else "a ZVT terminal reports its serial number in digits only (TLV 1F42)"


def front_end(name: str, host_address: tuple[str, int], profile: Profile, faults: dict[str, float], *, seed: int,
              serial: str, terminal_id: str, timing: TerminalTiming, currency: str) -> VirtualZvtTerminal:
    """The virtual PT of ``posbench sim --protocol NAME``: on TCP for the "zvt-tcp" variant, else on a pty."""
    return VirtualZvtTerminal(host_address, profile, faults, seed=seed, serial=serial, terminal_id=terminal_id,
                              timing=timing, transport="tcp" if name == "zvt-tcp" else "serial",
                              password=PASSWORD, currency=currency)


def terminal_toml(term: VirtualZvtTerminal, currency: str) -> str:
    """The head of bench.toml's ``[terminal]`` for ``term``."""
    if term.address:
        where = f'address = "{term.address[0]}:{term.address[1]}"\n'
    else:
        assert term.port is not None  # a serial ZVT terminal: its pty
        where = f'port = "{term.port.path}"\nbaudrate = 9600\n'
    return f'[terminal]\nprotocol = "zvt"\n{where}password = "{PASSWORD}"\ncurrency = "{currency}"\n'
