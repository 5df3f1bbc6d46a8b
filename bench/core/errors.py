"""Exception types. Bench failures and unit failures are different families.

A ``BenchError`` means the bench itself failed (a missing port, a crashed emulator, the host
simulator gone): the run ends as ``bench_error`` and the unit is never blamed. A ``UnitError``
means the unit under test misbehaved (no answer, a malformed frame): that is evidence.
"""
from __future__ import annotations

import os


class PosbenchError(Exception):
    """Base of every posbench error."""


class ConfigError(PosbenchError):
    """A bench description or DUT profile is wrong. Names the file, the key and what is expected."""

    def __init__(self, file: str | os.PathLike[str], key: str, expected: str):
        self.file, self.key, self.expected = str(file), key, expected
        where = f"{self.file}: {key}" if key else self.file
        super().__init__(f"{where}: {expected}")


class BenchError(PosbenchError):
    """The bench failed (not the unit). ``device`` names the bench part, ``doing`` the action."""

    def __init__(self, device: str, doing: str, detail: str = ""):
        self.device, self.doing, self.detail = device, doing, detail
        msg = f"{device}: {doing} failed"
        super().__init__(f"{msg}: {detail}" if detail else msg)


class PortUnavailable(BenchError):
    """A port named in the bench description cannot be opened."""


class PortLost(BenchError):
    """An open port went away (adapter unplugged, emulator crashed) and did not come back."""


class HostUnavailable(BenchError):
    """The acquirer host simulator cannot be reached or its log cannot be read."""


class NoTerminal(BenchError):
    """A step needs the technician's answer and nobody can be asked: the run has no terminal
    (ssh without -t, a CI job) or its input ended. Never "no answer in time": nobody was asked."""

    def __init__(self, prompt: str, detail: str = ""):
        super().__init__("technician", f"asking \"{prompt}\"", detail or (
            "nobody could be asked: this run has no terminal to prompt on (ssh without -t, a CI job, "
            "a service); run it from a terminal, or give the bench a supply or relay that switches "
            "the unit ([power] in bench.toml)"))


class UnitError(PosbenchError):
    """The unit under test misbehaved while ``doing`` something."""

    def __init__(self, device: str, doing: str, detail: str = ""):
        self.device, self.doing, self.detail = device, doing, detail
        msg = f"{device}: {doing}"
        super().__init__(f"{msg}: {detail}" if detail else msg)


class UnitNotResponding(UnitError):
    """The unit did not answer in time (no ACK, no reply)."""


class ProtocolError(UnitError):
    """Bytes that do not follow the protocol: bad framing, LRC, fields."""

    def __init__(self, detail: str, device: str = "ecr", doing: str = "parsing a frame"):
        super().__init__(device, doing, detail)


class FrameError(ProtocolError):
    """A link-layer frame is malformed (sentinels, length, LRC)."""


class MessageError(ProtocolError):
    """A frame's payload is not a valid application message."""
