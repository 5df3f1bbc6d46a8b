"""Virtual NXP PN532 (firmware v1.6) on its HSU (UART) interface, on a pseudo-terminal.

nfcpy's own ``pn532`` driver opens the pty slave, initialises the chip (GetFirmwareVersion,
SAMConfiguration, ``stty`` + SetSerialBaudRate, the extended-frame Diagnose line test,
SetParameters, RFConfiguration, Read/WriteRegister) and polls for cards with
InListPassiveTarget, then talks to them with InCommunicateThru. The chip itself (commands,
cards from ``posbench.sim.devices.nfc_cards``, the ``nfc_antenna`` fault) is
``pn532_chip.PN532Chip``; this module adds the HSU framing and the pty.

Frames (``pn532_frames``; PN532 user manual UM0701-02, 6.2.1): normal ``00 00 FF LEN LCS TFI PD.. DCS 00``,
extended ``00 00 FF FF FF LENm LENl LCS TFI PD.. DCS 00``, ACK ``00 00 FF 00 FF 00``,
NACK ``00 00 FF FF 00 00``, syntax error ``00 00 FF 01 FF 7F 81 00``.
"""
from __future__ import annotations

import logging
import random
import time

from posbench.sim.devices.pn532_chip import FIRMWARE, Counters, PN532Chip, crc_a
from posbench.sim.devices.pn532_frames import ACK, ERROR_FRAME, NACK, FrameEvent, FrameParser, encode_frame
from posbench.sim.devices.pty_port import PtyDevice, PtyPort
from posbench.sim.unit.noisy_port import NoisyPort

__all__ = ["FIRMWARE", "Counters", "PN532Emulator", "crc_a"]

log = logging.getLogger(__name__)


class PN532Emulator(PN532Chip, PtyDevice):
    """A PN532 on a pty. ``antenna_fault`` is the ``nfc_antenna`` severity in [0, 1] (see
    ``PN532Chip``); ``present(card)``, ``remove()``, ``set_powered(on)`` act on the chip."""

    thread_name = "pn532-emulator"

    def __init__(self, rng: random.Random, antenna_fault: float = 0.0, *, firmware: bytes = FIRMWARE,
                 noisy: random.Random | None = None, frame_errors: float = 0.0):
        """``firmware``: what GetFirmwareVersion answers (IC, Ver, Rev, Support); ``frame_errors``:
        the share of its UART frames a cracked joint damages (one bit flipped; ``noisy`` draws
        which), and what it sends unpowered is lost."""
        self._init_thread()
        self._parser = FrameParser()
        self._last_response = b""
        PN532Chip.__init__(self, rng, antenna_fault, wake=self._stop, firmware=firmware)
        self.port: PtyPort | NoisyPort = PtyPort()
        if frame_errors:
            self.port = NoisyPort(self.port, noisy or random.Random(0), frame_errors, powered=lambda: self._powered)
        self.path = self.port.path

    def _reset_chip(self) -> None:
        """Power-up reset: the chip state, and a half-received frame is gone (115200 baud)."""
        PN532Chip._reset_chip(self)
        self._parser.reset()

    # -- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        last_rx = time.monotonic()
        while not self._stop.is_set():
            try:
                data = self.port.read(4096, 0.05)
            except OSError as exc:  # the pty was closed under us: stop quietly
                log.debug("pn532 emulator: pty read failed: %s", exc)
                return
            now = time.monotonic()
            if not data:
                if self._parser.buf and now - last_rx > 0.5:
                    self._parser.reset()  # a frame cut off half-way is dropped, as by the chip
                continue
            last_rx = now
            with self._lock:
                if not self._powered:
                    self.counters.bytes_ignored += len(data)
                    continue
                try:
                    for event in self._parser.feed(data):
                        self._handle_event(event)
                except (OSError, TimeoutError) as exc:  # nobody reads the pty any more
                    log.debug("pn532 emulator: write failed: %s", exc)
                    self._parser.reset()

    def _send(self, data: bytes) -> None:
        self.port.write(data)

    def _handle_event(self, event: FrameEvent) -> None:
        if event.kind == "ack":
            self.counters.acks_received += 1  # host cancelled/acknowledged: nothing pending here
        elif event.kind == "nack":
            self.counters.nacks_received += 1
            if self._last_response:
                self._send(self._last_response)
        elif event.kind == "checksum":
            self.counters.errors_sent += 1
            self._send(NACK)
        elif event.kind == "syntax":
            self.counters.errors_sent += 1
            self._send(ACK + ERROR_FRAME)
        else:
            self.counters.frames_received += 1
            self._command(event.data[1], event.data[2:])

    def _command(self, code: int, params: bytes) -> None:
        """ACK at once, then the answer frame (the syntax error frame for a rejected command)."""
        self._send(ACK)
        answer = self.execute(code, params)
        frame = ERROR_FRAME if answer is None else encode_frame(answer)
        self._last_response = frame
        self._send(frame)
