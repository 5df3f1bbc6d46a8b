"""One Caisse-AP exchange over TCP: connect to the terminal (default port 8888), send a request,
read its answer, hang up; and ``probe`` for ``posbench discover``.

Where a message stops: Caisse-AP messages carry no overall length and real terminals send no
terminator (Nepting: do not wait for CR/LF), so an answer is complete once the bytes received
are whole fields and either nothing more arrives for ``quiet_s`` seconds, a CR or LF follows,
or the terminal hangs up. Every wait is bounded: ``connect_timeout_s`` to connect, the caller's
timeout for the answer to start, ``rest_timeout_s`` for a field begun to end.

One connection per request (what the open clients do, and what a terminal that hangs up after
answering needs). Errors: a terminal that never answered in this session and cannot be reached
is the bench's (``PortUnavailable``: a wrong address, a cable, a terminal not switched on); one
that answered before and takes no connection now has stopped answering (``UnitNotResponding``,
judged against the supply and the link's hang-ups like any silence); one that accepts the
connection and never answers, hangs up on a request or answers malformed bytes is the unit's
(``UnitNotResponding``, ``TerminalHungUp``, ``FieldError``).
"""
from __future__ import annotations

import logging
import select
import socket
import time
from dataclasses import dataclass

from posbench.core.errors import PortLost, PortUnavailable, UnitNotResponding
from posbench.drivers.transport.tcp import connect_terminal

from .codec import (AE_MEANING, AE_NOT_DONE, VERSION, FieldError, Reason, decode_message, encode_message,
                     field_end, parse_reason)

TCP_PORT = 8888
"""Caisse-AP's usual port (akretion/caisse-ap-ip, Nepting)."""
QUIET_S = 0.1
"""Seconds of silence after whole fields that end an answer."""
REST_S = 5.0
"""Seconds a field begun may take to arrive whole."""
ENDINGS = b"\r\n"
log = logging.getLogger(__name__)


class TerminalHungUp(UnitNotResponding):
    """The terminal accepted the request and closed the connection without a whole answer
    (it reset, crashed or dropped the link)."""


@dataclass(frozen=True)
class Answer:
    """A terminal's answer: every field by tag, AE and AF taken apart."""

    fields: dict[str, str]

    @property
    def result(self) -> str:
        return self.fields.get("AE", "")

    @property
    def done(self) -> bool:
        return self.result == "10"

    @property
    def reason(self) -> Reason | None:
        """AF taken apart; None when the answer has none (an operation done)."""
        af = self.fields.get("AF")
        return parse_reason(af) if af else None

    @property
    def version(self) -> str:
        return self.fields["CZ"]

    def describe(self) -> str:
        """AE and AF in words, for logs and errors (no card data: CC, AC and AF only)."""
        text = f"AE {self.result} ({AE_MEANING.get(self.result, 'unknown')})"
        if (reason := self.reason) is not None:
            text += f", AF {reason.code} ({reason.meaning})"
            if reason.field39:
                text += f", field 39 = {reason.field39}"
        return text


def read_message(sock: socket.socket, timeout_s: float, quiet_s: float = QUIET_S, rest_s: float = REST_S,
                 device: str = "terminal", doing: str = "waiting for the answer") -> bytes:
    """One message from ``sock`` (see the module doc for where it stops). ``UnitNotResponding``
    when nothing starts within ``timeout_s``, ``TerminalHungUp`` when the peer hangs up before
    the message is whole, ``FieldError`` for bytes that are not fields or a field cut off."""
    buffer = bytearray()
    deadline = time.monotonic() + timeout_s
    rest_deadline, whole = 0.0, 0
    while True:
        if not buffer:
            wait = deadline - time.monotonic()
        elif whole == len(buffer):
            wait = quiet_s
        else:
            wait = rest_deadline - time.monotonic()
        if wait <= 0 or not select.select([sock], [], [], wait)[0]:
            if not buffer:
                raise UnitNotResponding(device, doing, f"no answer within {timeout_s:g} s")
            if whole == len(buffer):
                return bytes(buffer)
            raise FieldError(f"message cut off: a field begun at byte {whole} did not end within {rest_s:g} s",
                             device, doing)
        error: OSError | None = None
        try:
            chunk = sock.recv(4096)
        except OSError as exc:
            chunk, error = b"", exc
        if not chunk:
            if buffer and whole == len(buffer):
                return bytes(buffer)  # the peer hung up after a whole message
            raise TerminalHungUp(device, doing, "the peer closed the connection "
                                 + (f"after {len(buffer)} byte(s) of a message" if buffer else "without a message")
                                 + (f" ({error})" if error else ""))
        was_whole = whole == len(buffer)
        buffer.extend(chunk)
        cut = next((i for i, byte in enumerate(buffer) if byte in ENDINGS), None)
        if cut is not None and cut > 0 and field_end(buffer[:cut]) == cut:
            return bytes(buffer[:cut])  # a CR or LF after whole fields
        whole = field_end(buffer)
        if was_whole and whole < len(buffer):
            rest_deadline = time.monotonic() + rest_s  # a field begun: it has rest_s to end


class CaisseApClient:
    """The ECR's side: ``request(fields, timeout_s)`` -> ``Answer``. ``host``/``port`` say where
    the terminal listens."""

    def __init__(self, host: str, port: int = TCP_PORT, connect_timeout_s: float = 3.0,
                 quiet_s: float = QUIET_S, rest_s: float = REST_S, device: str = "terminal"):
        self.host, self.port = host, port
        self.connect_timeout_s, self.quiet_s, self.rest_s, self.device = connect_timeout_s, quiet_s, rest_s, device
        self.reached = False
        """True once the terminal answered a request: a later refusal is its silence, not a typo."""
        self.tolerate_refusal = False
        """While the unit boots (``wait_ready``), a refused connection is the unit's silence."""
        self.heard_at: float | None = None
        """When the terminal's last whole answer arrived (``time.monotonic`` s), None before it."""
        self.hangups = 0
        """Requests the terminal hung up on (``TerminalHungUp``): a link that breaks, not silence."""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self) -> socket.socket:
        return connect_terminal(self.host, self.port, self.connect_timeout_s, self.device,
                                f"connecting to the Caisse-AP terminal at {self.address}", "the terminal",
                                reached=self.reached, booting=self.tolerate_refusal)

    def request(self, fields: dict[str, str], timeout_s: float, doing: str = "a Caisse-AP request") -> Answer:
        """Send ``fields`` (CZ added when missing) and return the answer, which must start
        within ``timeout_s`` seconds; a malformed answer, or one without AE, is a ``FieldError``."""
        raw = encode_message({"CZ": VERSION, **fields})
        sock = self.connect()
        try:
            sock.settimeout(max(1.0, self.rest_s))
            try:
                sock.sendall(raw)
            except OSError as exc:
                raise TerminalHungUp(self.device, doing, f"the terminal dropped the request ({exc})") from None
            answer = Answer(decode_message(read_message(sock, timeout_s, self.quiet_s, self.rest_s, self.device,
                                                        doing)))
        except FieldError as exc:
            raise FieldError(exc.detail, self.device, doing) from None
        except TerminalHungUp:
            self.hangups += 1
            raise
        finally:
            sock.close()
        self.reached = True  # it answered: the address, the cable and its power were right
        self.heard_at = time.monotonic()
        if answer.result not in AE_MEANING:
            raise FieldError(f"answer without a valid AE (got {answer.result or 'none'!r})", self.device, doing)
        if "AF" in answer.fields:
            parse_reason(answer.fields["AF"])  # a malformed AF fails here, not in the caller's hands
        log.debug("caisse-ap %s: %s", doing, answer.describe())
        return answer


PROBE_FIELDS = {"CJ": "000000000000", "CA": "01", "CD": "0", "CE": "978"}
"""The probe: a debit request without its amount (CB)."""


def probe(host: str, port: int = TCP_PORT, timeout_s: float = 1.0) -> str | None:
    """What answers Caisse-AP at ``host:port``, in a few words (its version), or None.

    The probe is a debit request without an amount (CB): a Caisse-AP terminal refuses it at
    once as badly formatted (AE 01, AF 09, as Nepting documents and akretion/caisse-ap-ip's
    simulator does for a missing mandatory tag), so no payment starts and no card is asked for.
    Whatever answers with a CZ and a valid AE is a Caisse-AP terminal. Each step waits at most
    ``timeout_s`` seconds; a closed port, silence or bytes of another protocol give None.
    """
    client = CaisseApClient(host, port, connect_timeout_s=timeout_s, rest_s=timeout_s)
    try:
        answer = client.request(PROBE_FIELDS, timeout_s, "probing for Caisse-AP")
        reason = answer.reason
    except (OSError, PortUnavailable, PortLost, UnitNotResponding, FieldError):
        return None
    refused = f", refused a request without amount: AF {reason.code} ({reason.meaning})" if reason else ""
    return f"Caisse-AP terminal, version {answer.version}" + refused
