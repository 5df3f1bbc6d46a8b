"""HID boot keyboard reports (8 bytes: modifiers, reserved, 6 key usage codes) <-> characters.

US layout, as keyboard-emulation card readers type it (HID Usage Tables 1.12, page 0x07).
A character is typed as a press report then an all-zero release report. Decoding is stateful:
a key counts when it appears in a report and was not held in the previous one, so "11" needs
a release in between, exactly as a host keyboard driver sees it.

Hand-written: the table is small and fixed, and no maintained PyPI package maps usage codes
both ways without pulling in an input stack (evdev/pynput need a display or uinput).
"""
from __future__ import annotations

from posbench.core.errors import ProtocolError

REPORT_LEN = 8
LEFT_SHIFT, RIGHT_SHIFT = 0x02, 0x20
ENTER = 0x28
ERROR_ROLLOVER = 0x01

_UNSHIFTED = {0x28: "\r", 0x2B: "\t", 0x2C: " ", 0x2D: "-", 0x2E: "=", 0x2F: "[", 0x30: "]",
              0x31: "\\", 0x33: ";", 0x34: "'", 0x35: "`", 0x36: ",", 0x37: ".", 0x38: "/"}
_SHIFTED = {0x1E: "!", 0x1F: "@", 0x20: "#", 0x21: "$", 0x22: "%", 0x23: "^", 0x24: "&",
            0x25: "*", 0x26: "(", 0x27: ")", 0x2C: " ", 0x2D: "_", 0x2E: "+", 0x2F: "{",
            0x30: "}", 0x31: "|", 0x33: ":", 0x34: '"', 0x35: "~", 0x36: "<", 0x37: ">",
            0x38: "?", 0x28: "\r"}
for _i in range(26):
    _UNSHIFTED[0x04 + _i] = chr(ord("a") + _i)
    _SHIFTED[0x04 + _i] = chr(ord("A") + _i)
for _i in range(9):
    _UNSHIFTED[0x1E + _i] = chr(ord("1") + _i)
_UNSHIFTED[0x27] = "0"

_ENCODE: dict[str, tuple[int, int]] = {}
for _code, _ch in _UNSHIFTED.items():
    _ENCODE.setdefault(_ch, (0, _code))
for _code, _ch in _SHIFTED.items():
    _ENCODE.setdefault(_ch, (LEFT_SHIFT, _code))


def char_reports(ch: str) -> list[bytes]:
    """The press and release reports that type ``ch``; ``ValueError`` if it has no key."""
    try:
        modifier, code = _ENCODE[ch]
    except KeyError:
        raise ValueError(f"no US keyboard key types character 0x{ord(ch[:1] or chr(0)):02x}") from None
    return [bytes([modifier, 0, code, 0, 0, 0, 0, 0]), bytes(REPORT_LEN)]


def text_reports(text: str) -> list[bytes]:
    """Reports typing ``text`` key by key."""
    return [report for ch in text for report in char_reports(ch)]


def usage_to_char(code: int, shift: bool) -> str | None:
    """The character a usage code types, or None if it types none in this table."""
    return (_SHIFTED if shift else _UNSHIFTED).get(code)


class KeyboardDecoder:
    """Turns a stream of boot keyboard reports into typed characters."""

    def __init__(self, device: str = "magstripe") -> None:
        self.device = device
        self._held: set[int] = set()

    def reset(self) -> None:
        self._held.clear()

    def feed(self, report: bytes) -> str:
        """Characters newly typed by ``report``. ``ProtocolError`` for a malformed report or a
        key a card reader never types (the message names the usage code, never the text)."""
        report = bytes(report)
        if len(report) != REPORT_LEN:
            raise ProtocolError(f"keyboard report is {len(report)} bytes, not {REPORT_LEN}",
                                self.device, "decoding a keyboard report")
        modifiers, keys = report[0], [k for k in report[2:] if k]
        if keys and all(k == ERROR_ROLLOVER for k in keys):
            return ""  # phantom state: the keyboard cannot tell which keys are down
        shift = bool(modifiers & (LEFT_SHIFT | RIGHT_SHIFT))
        out = []
        for code in keys:
            if code in self._held:
                continue
            ch = usage_to_char(code, shift)
            if ch is None:
                raise ProtocolError(f"unexpected key usage 0x{code:02x} (modifiers 0x{modifiers:02x})",
                                    self.device, "decoding a keyboard report")
            out.append(ch)
        self._held = set(keys)
        return "".join(out)


def decode_reports(reports) -> str:
    """Decode a whole sequence of reports (see ``KeyboardDecoder.feed``)."""
    decoder = KeyboardDecoder()
    return "".join(decoder.feed(r) for r in reports)
