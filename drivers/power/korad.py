"""Korad KA3005P bench supply (and its rebadges: Tenma 72-2540, Velleman PS3005D, RND 320-...).

Serial 9600 8N1, ASCII, no terminator: the supply splits commands by grammar and timing, so
commands are spaced at least ``COMMAND_GAP_S`` apart (the unit needs ~50 ms). Answers have no
terminator either: fixed-width numbers (``12.00`` volts, ``1.500`` amps), one raw status byte, or
an identity string that ends by silence. The gap after each command is spent listening: any byte
that arrives then (a late, doubled or corrupt answer) is a ``SupplyProtocolError``.

Every failure here is a ``BenchError`` (the bench's own supply link failed), never a unit error.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from .errors import PowerSwitchFailed, SupplyNotResponding, SupplyProtocolError
from .protocols import Reading
from .serial_link import SerialDevice, SerialLink

COMMAND_GAP_S = 0.055
"""Seconds between the end of one command and the next: the supply's 50 ms plus 5 ms margin."""
IDENTITY_QUIET_S = 0.03
"""Silence (seconds) that ends the variable-length ``*IDN?`` answer."""
MAX_VOLTS = 30.0
"""KA3005P output range: 0..30 V."""
MAX_AMPS = 5.0
"""KA3005P output range: 0..5 A."""
RESTORE_S = 5.0
"""Seconds ``restore`` may take to put every setting back (a handful of commands)."""

_VOLTS_RE = re.compile(rb"\d{2}\.\d{2}")
_AMPS_RE = re.compile(rb"\d\.\d{3}")
_IDENTITY_RE = re.compile(r"(?P<maker>\S+) (?P<model>\S+)(?: (?P<version>V\S+))?(?: SN:(?P<serial>\S+))?")

STATUS_CV = 0x01
"""STATUS? bit 0: channel 1 in constant voltage (clear: constant current)."""
STATUS_BEEP = 0x10
"""STATUS? bit 4: key beep enabled."""
STATUS_OUTPUT = 0x40
"""STATUS? bit 6: output on."""


@dataclass(frozen=True)
class Status:
    """Decoded ``STATUS?`` byte."""

    raw: int
    cv: bool
    output: bool
    beep: bool

    @property
    def mode(self) -> str:
        """``"CV"`` (constant voltage) or ``"CC"`` (current limited)."""
        return "CV" if self.cv else "CC"


@dataclass(frozen=True)
class Setpoint:
    """What the supply is set to: ``volts`` (V), current limit ``amps`` (A), ``output`` on."""

    volts: float
    amps: float
    output: bool

    def describe(self) -> str:
        return f"{self.volts:.2f} V, {self.amps:.3f} A limit, output {'on' if self.output else 'off'}"


@dataclass(frozen=True)
class Identity:
    """``*IDN?`` answer, e.g. ``KORAD KA3005P V5.5 SN:03512345``; fields a rebadge omits are None."""

    text: str
    maker: str
    model: str | None
    version: str | None
    serial: str | None


def _shown(raw: bytes) -> str:
    return repr(raw[:32]) + ("..." if len(raw) > 32 else "")


def parse_volts(raw: bytes, doing: str = "reading volts", device: str = "korad") -> float:
    """``b"12.00"`` -> 12.0; anything else is a ``SupplyProtocolError``."""
    if not _VOLTS_RE.fullmatch(raw):
        raise SupplyProtocolError(device, doing, f"expected volts as NN.NN, got {_shown(raw)}")
    return float(raw)


def parse_amps(raw: bytes, doing: str = "reading amps", device: str = "korad") -> float:
    """``b"1.500"`` -> 1.5; anything else is a ``SupplyProtocolError``."""
    if not _AMPS_RE.fullmatch(raw):
        raise SupplyProtocolError(device, doing, f"expected amps as N.NNN, got {_shown(raw)}")
    return float(raw)


def parse_status(raw: bytes, doing: str = "reading the status byte", device: str = "korad") -> Status:
    """One raw byte -> ``Status``; any other length is a ``SupplyProtocolError``."""
    if len(raw) != 1:
        raise SupplyProtocolError(device, doing, f"expected 1 status byte, got {_shown(raw)}")
    b = raw[0]
    return Status(raw=b, cv=bool(b & STATUS_CV), output=bool(b & STATUS_OUTPUT), beep=bool(b & STATUS_BEEP))


def parse_identity(raw: bytes, doing: str = "identifying", device: str = "korad") -> Identity:
    """Printable ASCII of at most 64 characters with a letter in it. Fields are split from
    ``MAKER MODEL [Vx.y] [SN:...]`` where the text has that shape; older firmware and rebadges
    run them together (``KORADKA3005PV2.0``), which leaves ``model`` None and ``maker`` the text."""
    if not 0 < len(raw) <= 64 or any(not 0x20 <= b < 0x7F for b in raw) \
            or not any(chr(b).isalpha() for b in raw):
        raise SupplyProtocolError(device, doing, f"expected a printable identity, got {_shown(raw)}")
    text = raw.decode("ascii")
    m = _IDENTITY_RE.fullmatch(text)
    if not m:
        return Identity(text, text.strip(), None, None, None)
    return Identity(text, m["maker"], m["model"], m["version"], m["serial"])


class KoradSupply(SerialDevice):
    """A KA3005P on ``url`` (any pyserial ``serial_for_url`` port or URL).

    ``timeout`` (s) bounds each answer. Thread-safe: a ``monitor`` thread may ``read()`` while a
    test switches the output; commands are serialised and spaced. Implements ``PowerSwitch``
    (output on/off, read back from the status byte) and ``PowerMonitor`` (``read()``).
    """

    def __init__(self, url: str, channel: int = 1, timeout: float = 0.5, *, name: str = "korad",
                 reopen_s: float = 2.0, command_gap_s: float = COMMAND_GAP_S):
        if channel not in (1, 2):
            raise ValueError(f"Korad channel must be 1 or 2, got {channel!r}")
        self.url, self.channel, self.timeout, self.name = url, channel, timeout, name
        self.command_gap_s = command_gap_s
        self.link = SerialLink(url, device=f"{name} supply on {url}", reopen_s=reopen_s)
        self._lock = threading.RLock()
        self._last = 0.0

    # -- one command -------------------------------------------------------------------------------
    def _command(self, cmd: str, doing: str, answer: int = 0, quiet_s: float | None = None) -> bytes:
        """Send ``cmd``; read up to ``answer`` bytes (0: none expected); listen out the gap."""
        device = self.link.device
        with self._lock:
            for attempt in (1, 2):
                wait = self._last + self.command_gap_s - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                reopens = self.link.reopens
                self.link.discard_input(doing)
                self.link.write(cmd.encode("ascii"), doing)
                data = self.link.collect(answer, self.timeout, doing, quiet_s) if answer else b""
                self._last = time.monotonic()
                # The mandatory gap is spent listening: bytes now are not part of any answer.
                stray = self.link.collect(64, self.command_gap_s, doing)
                if answer and not data and self.link.reopens != reopens and attempt == 1:
                    continue  # the port vanished mid-command and came back: ask once more
                break
        if answer and not data:
            raise SupplyNotResponding(device, doing, f"no answer to {cmd} within {self.timeout:g} s")
        if stray:
            raise SupplyProtocolError(device, doing,
                                      f"{len(stray)} unexpected byte(s) after {cmd}: {_shown(stray)}")
        return data

    # -- queries -----------------------------------------------------------------------------------
    def identify(self) -> Identity:
        raw = self._command("*IDN?", "identifying (*IDN?)", 64, IDENTITY_QUIET_S)
        return parse_identity(raw, "identifying (*IDN?)", self.link.device)

    def voltage_setpoint(self) -> float:
        """Volts set (``VSET1?``)."""
        doing = f"reading the voltage setpoint (VSET{self.channel}?)"
        return parse_volts(self._command(f"VSET{self.channel}?", doing, 5), doing, self.link.device)

    def current_limit(self) -> float:
        """Amps limit set (``ISET1?``)."""
        doing = f"reading the current limit (ISET{self.channel}?)"
        return parse_amps(self._command(f"ISET{self.channel}?", doing, 5), doing, self.link.device)

    def volts(self) -> float:
        """Output volts measured (``VOUT1?``)."""
        doing = f"measuring volts (VOUT{self.channel}?)"
        return parse_volts(self._command(f"VOUT{self.channel}?", doing, 5), doing, self.link.device)

    def amps(self) -> float:
        """Output amps measured (``IOUT1?``)."""
        doing = f"measuring amps (IOUT{self.channel}?)"
        return parse_amps(self._command(f"IOUT{self.channel}?", doing, 5), doing, self.link.device)

    def read(self) -> Reading:
        """Volts and amps now (two commands, ~0.12 s); ``t`` is when the volts were measured."""
        with self._lock:
            t = time.monotonic()
            volts = self.volts()
            return Reading(volts=volts, amps=self.amps(), t=t)

    def status(self) -> Status:
        doing = "reading the status byte (STATUS?)"
        return parse_status(self._command("STATUS?", doing, 1), doing, self.link.device)

    # -- settings ----------------------------------------------------------------------------------
    def set_voltage(self, volts: float) -> None:
        """Set the output volts (0..30 V, 10 mV steps) and read the setpoint back."""
        if not 0.0 <= volts <= MAX_VOLTS:
            raise ValueError(f"{volts!r} V is outside the KA3005P's 0..{MAX_VOLTS:g} V")
        with self._lock:
            self._command(f"VSET{self.channel}:{volts:05.2f}", f"setting {volts:.2f} V")
            got = self.voltage_setpoint()
        if abs(got - round(volts, 2)) > 0.005:
            raise PowerSwitchFailed(self.link.device, f"setting {volts:.2f} V", f"setpoint reads {got:.2f} V")

    def set_current(self, amps: float) -> None:
        """Set the current limit (0..5 A, 1 mA steps) and read it back."""
        if not 0.0 <= amps <= MAX_AMPS:
            raise ValueError(f"{amps!r} A is outside the KA3005P's 0..{MAX_AMPS:g} A")
        with self._lock:
            self._command(f"ISET{self.channel}:{amps:.3f}", f"setting a {amps:.3f} A limit")
            got = self.current_limit()
        if abs(got - round(amps, 3)) > 0.0005:
            raise PowerSwitchFailed(self.link.device, f"setting a {amps:.3f} A limit", f"limit reads {got:.3f} A")

    def set_ocp(self, enabled: bool) -> None:
        """Over-current protection: when on, reaching the current limit switches the output off."""
        self._command("OCP1" if enabled else "OCP0", "switching over-current protection")

    # -- PowerSwitch ---------------------------------------------------------------------------------
    def _output(self, on: bool) -> None:
        doing = "switching the output " + ("on (OUT1)" if on else "off (OUT0)")
        with self._lock:
            self._command("OUT1" if on else "OUT0", doing)
            st = self.status()
        if st.output != on:
            raise PowerSwitchFailed(self.link.device, doing, f"status byte 0x{st.raw:02x} says output "
                                    + ("off" if on else "on"))

    def on(self) -> None:
        self._output(True)

    def off(self) -> None:
        self._output(False)

    def is_on(self) -> bool:
        """Output state read back from the status byte."""
        return self.status().output

    def cycle(self, off_s: float) -> None:
        """Off, ``off_s`` seconds, on; the output is switched back on whatever ends the wait (a
        stop signal's ``KeyboardInterrupt`` included)."""
        self.off()
        try:
            time.sleep(max(0.0, off_s))
        finally:
            self.on()

    # -- what the bench changes, put back -------------------------------------------------------
    def setpoint(self) -> Setpoint:
        """Volts and current limit set, and the output state, read from the supply."""
        with self._lock:
            return Setpoint(self.voltage_setpoint(), self.current_limit(), self.status().output)

    def restore(self, want: Setpoint, deadline_s: float = RESTORE_S) -> list[str]:
        """Set the supply to ``want`` where it differs (read back first); what was changed, in
        words (``"7.00 V -> 12.00 V"``), empty when nothing was. A supply that has not taken
        every setting within ``deadline_s`` seconds (each command is bounded by ``timeout``)
        is a ``PowerSwitchFailed`` naming what is left to set by hand."""
        give_up = time.monotonic() + deadline_s
        changed: list[str] = []
        with self._lock:
            now = self.setpoint()
            steps = []
            if not want.output and now.output:
                steps.append(("output on -> off", self.off))
            if abs(now.amps - want.amps) > 0.0005:
                steps.append((f"{now.amps:.3f} A -> {want.amps:.3f} A limit", lambda: self.set_current(want.amps)))
            if abs(now.volts - want.volts) > 0.005:
                steps.append((f"{now.volts:.2f} V -> {want.volts:.2f} V", lambda: self.set_voltage(want.volts)))
            if want.output and not now.output:
                steps.append(("output off -> on", self.on))
            for n, (what, step) in enumerate(steps):
                if time.monotonic() > give_up:
                    raise PowerSwitchFailed(self.link.device, f"restoring {want.describe()}",
                                            f"not done within {deadline_s:g} s; still to do by hand: "
                                            + ", ".join(w for w, _ in steps[n:]))
                step()
                changed.append(what)
        return changed
