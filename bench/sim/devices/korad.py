"""Virtual Korad KA3005P on a pseudo-terminal, feeding the virtual unit's ``UnitPower``.

Like the real supply it has no command terminator: ``KoradParser`` splits the byte stream by
grammar (a command ends when it is complete, or when a number can grow no further, or after
``IDLE_S`` of silence) and silently drops bytes that cannot start a command. Hand-written
because no library parses this terminator-less dialect.

Answers: ``*IDN?`` -> ``KORAD KA3005P V5.5 SN:<serial>``; ``VSET1?``/``VOUT1?`` -> ``NN.NN``;
``ISET1?``/``IOUT1?`` -> ``N.NNN``; ``STATUS?`` -> one byte (bit 0 CV, bit 4 beep, bit 6 output).
Out-of-range setpoints (above 30 V / 5 A) are ignored; ``OCP1`` switches the output off when the
current limit is reached; ``OVP`` is stored only (the model never exceeds the setpoint).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from posbench.drivers.power.korad import MAX_AMPS, MAX_VOLTS, STATUS_BEEP, STATUS_CV, STATUS_OUTPUT

from posbench.sim.unit.power import UnitPower
from posbench.sim.devices.pty_port import PtyDevice, PtyPort

IDLE_S = 0.03
"""Silence (seconds) after which a pending command is completed or dropped."""
POLL_S = 0.01
"""Seconds the emulator waits for bytes while it has something to time: a pending command's
silence, an armed over-current protection."""
QUIET_POLL_S = 0.2
"""Seconds it waits for bytes otherwise (only ``stop()`` waits on it)."""
_NUMERIC = {"VSET": (2, 2), "ISET": (1, 3)}
"""Numeric commands: (integer digits, fraction digits) at most."""


@dataclass(frozen=True)
class Command:
    """A parsed command: ``name`` (``VSET``, ``VSET?``, ``OUT``, ``*IDN?`` ...), its ``value``
    (float for VSET/ISET, int for OUT/OCP/OVP/BEEP/RCL/SAV, else None), the ``text`` received and
    ``t``, the arrival time (monotonic s) of its first byte."""

    name: str
    value: float | int | None
    text: str
    t: float


class KoradParser:
    """Byte stream -> ``Command`` list, for channel ``channel``. Never raises on any input."""

    def __init__(self, channel: int = 1, idle_s: float = IDLE_S):
        self.channel, self.idle_s = channel, idle_s
        ch = str(channel)
        self._literals: dict[str, tuple[str, int | None]] = {
            "*IDN?": ("*IDN?", None), "STATUS?": ("STATUS?", None),
            f"VSET{ch}?": ("VSET?", None), f"ISET{ch}?": ("ISET?", None),
            f"VOUT{ch}?": ("VOUT?", None), f"IOUT{ch}?": ("IOUT?", None)}
        for name in ("OUT", "OCP", "OVP", "BEEP"):
            for v in (0, 1):
                self._literals[f"{name}{v}"] = (name, v)
        for slot in range(1, 6):
            self._literals[f"RCL{slot}"] = ("RCL", slot)
            self._literals[f"SAV{slot}"] = ("SAV", slot)
        self._numeric = {f"{name}{ch}:": (name, shape) for name, shape in _NUMERIC.items()}
        self._buf = ""
        self._times: list[float] = []
        self._last = 0.0
        self.dropped = 0
        """Bytes discarded as garbage."""

    def feed(self, data: bytes, now: float) -> list[Command]:
        self._buf += data.decode("latin-1")
        self._times += [now] * len(data)
        self._last = now
        return self._parse(final=False)

    @property
    def pending(self) -> bool:
        """Whether part of a command waits for more bytes or for its silence."""
        return bool(self._buf)

    def idle(self, now: float) -> list[Command]:
        """Call when nothing arrived: after ``idle_s`` of silence a pending command completes."""
        if self._buf and now - self._last >= self.idle_s:
            out = self._parse(final=True)
            self._drop(len(self._buf))
            return out
        return []

    def _drop(self, n: int) -> None:
        self.dropped += n
        self._buf, self._times = self._buf[n:], self._times[n:]

    def _take(self, n: int, name: str, value) -> Command:
        cmd = Command(name, value, self._buf[:n], self._times[0])
        self._buf, self._times = self._buf[n:], self._times[n:]
        return cmd

    def _parse(self, final: bool) -> list[Command]:
        out: list[Command] = []
        while self._buf:
            verdict = self._match(final)
            if verdict is None:          # could still become a command: wait for more bytes
                break
            if verdict == 0:             # cannot start a command here
                self._drop(1)
                continue
            if isinstance(verdict, int):  # a numeric command whose number is unusable
                self._drop(verdict)
                continue
            out.append(self._take(*verdict))
        return out

    def _match(self, final: bool):
        """A (length, name, value) match, None to wait, 0 for garbage, or a count to discard."""
        buf = self._buf
        waiting = False
        for text, (name, value) in self._literals.items():
            if buf.startswith(text):
                return len(text), name, value
            if text.startswith(buf):
                waiting = True
        for prefix, (name, (int_max, frac_max)) in self._numeric.items():
            if buf.startswith(prefix):
                return self._number(prefix, name, int_max, frac_max, final)
            if prefix.startswith(buf):
                waiting = True
        return None if waiting and not final else 0

    def _number(self, prefix: str, name: str, int_max: int, frac_max: int, final: bool):
        rest, i, n_int, n_frac, dot = self._buf[len(prefix):], 0, 0, 0, False
        while i < len(rest) and rest[i] in "0123456789" and n_int < int_max:
            i, n_int = i + 1, n_int + 1
        if n_int and i < len(rest) and rest[i] == ".":
            i, dot = i + 1, True
            while i < len(rest) and rest[i] in "0123456789" and n_frac < frac_max:
                i, n_frac = i + 1, n_frac + 1
        full = n_int == int_max and dot and n_frac == frac_max
        if i == len(rest) and not full and not final:
            return None  # the number may still grow
        if not n_int:
            return len(prefix) + i
        return len(prefix) + i, name, float(rest[:i])


class KoradEmulator(PtyDevice):
    """A KA3005P on ``port.path`` driving ``power``. Starts with ``volts``/``amps`` set and the
    output ``output`` (on by default, so the virtual unit is powered).

    ``commands`` records every (t, text) parsed.
    """

    def __init__(self, power: UnitPower, *, serial: str = "03512345", version: str = "V5.5",
                 volts: float = 12.0, amps: float = 2.0, output: bool = True, channel: int = 1):
        self.power, self.serial, self.version = power, serial, version
        self.volts, self.amps, self.output = volts, amps, output
        self.ocp = self.ovp = False
        self.beep = True
        self.memory = [(volts, amps)] * 5
        self.parser = KoradParser(channel)
        self.port: PtyPort = PtyPort()
        self.commands: list[tuple[float, str]] = []
        self.unsent = 0
        self._init_thread()
        self._lock = threading.Lock()
        self._apply()

    @property
    def path(self) -> str:
        return self.port.path

    def _apply(self) -> None:
        self.power.set_source(self.volts if self.output else 0.0, self.amps)

    thread_name = "korad-emulator"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                timing = self.parser.pending or (self.ocp and self.output)
                data = self.port.read(256, POLL_S if timing else QUIET_POLL_S)
            except OSError:
                return  # pty closed under us
            now = time.monotonic()
            for cmd in (self.parser.feed(data, now) if data else self.parser.idle(now)):
                self._record(cmd)
                answer = self._handle(cmd)
                if answer:
                    try:
                        self.port.write(answer)
                    except TimeoutError:
                        self.unsent += 1  # nobody reads the port: the answer is lost
                    except OSError:
                        return
            if self.ocp and self.output and self.power.constant_current():
                self.output = False  # over-current protection trips
                self._apply()

    def _record(self, cmd: Command) -> None:
        with self._lock:
            self.commands.append((cmd.t, cmd.text))

    def status_byte(self) -> int:
        b = STATUS_BEEP if self.beep else 0
        if self.output:
            b |= STATUS_OUTPUT
        if not (self.output and self.power.constant_current()):
            b |= STATUS_CV
        return b

    def _handle(self, cmd: Command) -> bytes:
        name, value = cmd.name, cmd.value
        if name == "*IDN?":
            return f"KORAD KA3005P {self.version} SN:{self.serial}".encode("ascii")
        if name == "STATUS?":
            return bytes([self.status_byte()])
        if name == "VSET?":
            return f"{self.volts:05.2f}".encode()
        if name == "ISET?":
            return f"{self.amps:.3f}".encode()
        if name == "VOUT?":
            return f"{min(99.99, self.power.voltage() if self.output else 0.0):05.2f}".encode()
        if name == "IOUT?":
            return f"{min(9.999, self.power.current() if self.output else 0.0):.3f}".encode()
        if name == "VSET" and value is not None and 0.0 <= value <= MAX_VOLTS:
            self.volts = round(value, 2)
        elif name == "ISET" and value is not None and 0.0 <= value <= MAX_AMPS:
            self.amps = round(value, 3)
        elif name == "OUT":
            self.output = bool(value)
        elif name == "OCP":
            self.ocp = bool(value)
        elif name == "OVP":
            self.ovp = bool(value)
        elif name == "BEEP":
            self.beep = bool(value)
        elif name == "SAV" and isinstance(value, int):  # the parser gives SAV and RCL an int
            self.memory[value - 1] = (self.volts, self.amps)
        elif name == "RCL" and isinstance(value, int):
            self.volts, self.amps = self.memory[value - 1]
        self._apply()
        return b""
