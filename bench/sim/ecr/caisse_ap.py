"""Virtual Caisse-AP terminal: the terminal side of Caisse-AP (Concert V3) over TCP, over the
unit model (``posbench.sim.unit.model.VirtualUnit``) that every virtual terminal shares.

It listens on ``address`` (default 127.0.0.1 and any free port; like the virtual ZVT terminal on
TCP it stays in the bench's own namespace when the network lab runs: only the unit's host link
lives in the lab), serves one ECR connection at a time and answers each request with one
message (``posbench.drivers.ecr.caisse_ap.codec``): CZ, the request's CJ / CA / CB / CD / CE echoed,
AE 10 (done) or 01 (not done) with an AF reason, and for a sale done AC (authorisation), CC
(application), AA (card number, hidden digits as ``#``) and, when the request asked (CK 100),
the customer receipt in AK (base64). BA 1 gets AE 11 at once and the result when it is known,
on the same connection. Debits only: a credit or cancel (CD 1 / 2) is refused, AF 05.

The faults show the way a Caisse-AP terminal shows them:

- msr_head / chip_contacts / nfc_antenna: AE 01, AF 07 (not ended) with the terminal's message
  in field 44 ("CARTE ILLISIBLE", "CARTE MUETTE", "ECHEC SANS CONTACT") and CC naming the
  application (00B when tapped); the bench knows how it presented the card
- power_supply: resets on the bench's power model (silence: what was asked while it was off or
  booting is never answered); the supply trace says why
- pcb_intermittent: dropped connections instead of answers, on a steady supply
- network_unstable / firewall / ip_conflict: AF 11 (acquirer abandon) when the host did not
  answer; the network lab shows the rest
- resources: answers slower with every request (a leak)
- data_loss: AF 05 (forbidden: no keys or merchant record, the terminal will not pay)
- maintenance: the receipt's date and time come from the terminal's drifted clock (nothing in
  Caisse-AP reports a clock, a firmware or a maintenance date)
- firmware_driver: AF 10 (bad selection: the kernel could not select the card's application)
- application: silence (the app died on a status probe: its request is never answered; the
  restarted app serves the next connection), or AF 00 (unknown: the app crashed holding the
  host's answer, and restarts)
- issuer_referral: AE 01, AF 02 (phone call) with field 39 = 01 passed through
- operator_error: AF 06 (abandon: the abort key, or the PIN try limit) and AF 08 (no card in time)

Card data: only the masked card number (first 6 / last 4) leaves the terminal. Times in
seconds, amounts in minor units.
"""
from __future__ import annotations

import base64
import random
import select
import socket
import time
from typing import Callable

from posbench.setup.cards import Card
from posbench.core.errors import UnitError
from posbench.core.masking import mask_pan
from posbench.setup.profile import Profile
from posbench.drivers.ecr.caisse_ap.client import QUIET_S, read_message
from posbench.drivers.ecr.caisse_ap.codec import AE_DONE, AE_NOT_DONE, AE_TAKEN, FieldError, Reason, decode_message, \
    encode_message

from posbench.sim.unit.model import VirtualUnit
from posbench.sim.unit.front_end import PresentedCard, ReadsPresentedCards, UnitFrontEnd
from posbench.sim.unit.records import TerminalTiming, frame_error_rate

DEVICE = "virtual Caisse-AP terminal"
VERSION = "0320"
"""The CZ the terminal answers with (its own protocol version)."""
CARD_TIMEOUT_S = 3.0
"""Seconds a sale waits for a card before AF 08 (input timeout)."""
MANDATORY = ("CJ", "CA", "CB", "CD", "CE")
"""Tags a payment request must carry; without one it is refused at once, AF 09."""
ECHOED = ("CJ", "CA", "CB", "CD", "CE", "CF")
APPLICATION = {"magstripe": "001", "chip": "001", "contactless": "00B"}
"""CC: the CB application and its mode for each way of reading (the deck's cards are CB co-badged)."""
READ_MESSAGES = {"unreadable": "CARTE ILLISIBLE", "cleaning": "NETTOYER LECTEUR", "chip_error": "CARTE MUETTE",
                 "rf_error": "ECHEC SANS CONTACT"}
"""What the terminal displays (AF field 44) when a card read fails, by ``CardRead.failure``."""
HOST_FAILURES = ("host_timeout", "host_unreachable", "host_format")
LOCAL_REFUSALS = {"no_keys": ("05", "TERMINAL NON INIT"), "no_config": ("05", "TERMINAL NON INIT"),
                  "kernel_error": ("10", "ERREUR APPLICATION")}
"""A sale the unit failed itself -> (AF reason, displayed message)."""


class _Ended(Exception):
    """The request gets no answer: the power went, the app died or the link broke."""


class _EcrLink:
    """The listening socket, the one ECR connection it serves, and the connections it holds
    unanswered (``orphans``: their requests came while the terminal was off, booting or crashed;
    each is closed once its ECR hangs up, as a terminal's TCP stack forgets a connection the
    other end closed)."""

    def __init__(self, address: tuple[str, int]):
        self.listener = socket.create_server(address, backlog=4)
        self.sock: socket.socket | None = None
        self.orphans: list[socket.socket] = []

    def accept(self, timeout_s: float) -> socket.socket | None:
        if self.sock is None and select.select([self.listener], [], [], timeout_s)[0]:
            try:
                self.sock, _ = self.listener.accept()
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.sock.settimeout(2.0)
            except OSError:
                self.sock = None
        return self.sock

    def hang_up(self) -> None:
        """Close the connection served (a cracked board drops it)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def go_silent(self) -> None:
        """The terminal is off, booting or its app crashed: the connection served and every one
        waiting are held, never answered (the ECR sees silence, not a hang-up)."""
        if self.sock is not None:
            self.orphans.append(self.sock)
            self.sock = None
        while select.select([self.listener], [], [], 0)[0]:
            try:
                self.orphans.append(self.listener.accept()[0])
            except OSError:
                break
        self.forget_closed()

    def forget_closed(self) -> None:
        """Close the held connections whose ECR hung up (what they sent is dropped unread)."""
        for sock in select.select(self.orphans, [], [], 0)[0] if self.orphans else []:
            try:
                closed = not sock.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                closed = False
            except OSError:
                closed = True
            if closed:
                sock.close()
                self.orphans.remove(sock)

    def close(self) -> None:
        self.hang_up()
        for sock in self.orphans:
            sock.close()
        self.orphans.clear()
        self.listener.close()


class VirtualCaisseApTerminal(ReadsPresentedCards, UnitFrontEnd):
    """A Caisse-AP terminal on TCP (``.address``). ``faults`` maps cause id to severity in
    (0, 1]; ``currency`` is ISO 4217 numeric; ``present()`` hands it the card the bench's
    actuator presents."""

    thread_name = "virtual-caisse-ap-terminal"

    def __init__(self, host_address: tuple[str, int], profile: Profile,
                 faults: dict[str, float] | None = None, seed: int = 0,
                 serial: str = "0000123", terminal_id: str = "52100123",
                 timing: TerminalTiming | None = None, address: tuple[str, int] = ("127.0.0.1", 0),
                 currency: str = "978", card_timeout_s: float = CARD_TIMEOUT_S, quiet_s: float = QUIET_S):
        self.unit = VirtualUnit(host_address, profile, faults, seed, serial, terminal_id, timing)
        self.currency, self.card_timeout_s, self.quiet_s = currency, card_timeout_s, quiet_s
        self.rng = random.Random(seed + 31)
        """The terminal's own draws (its abandons and dropped answers), apart from the unit's."""
        self.drop_rate = frame_error_rate(self.sev("pcb_intermittent"))
        self.drops = 0
        self.port = None
        self.card = PresentedCard()
        self._link = _EcrLink(address)
        self._alive: Callable[[], bool] = self.unit.watch_power()
        self._init_thread()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._link.listener.getsockname()[:2]
        return str(host), int(port)

    # -- the serving loop -------------------------------------------------------------------
    def _idle(self) -> None:
        """Off, booting or restarting its app: silence on every connection (``_EcrLink.go_silent``)."""
        self._link.go_silent()

    def _close_transport(self) -> None:
        self._link.close()

    def _serve_next(self) -> None:
        self._link.forget_closed()
        sock = self._link.accept(0.2)
        if sock is None:
            return
        try:
            raw = read_message(sock, 0.2, self.quiet_s, device="ECR", doing="waiting for a request")
        except FieldError:
            raw = b""  # not Caisse-AP fields: refused as badly formatted
        except UnitError:
            if not self._connected():
                self._link.hang_up()
            return
        try:
            self._serve(raw)
        except _Ended:
            if self._alive():
                self._link.hang_up()  # the link broke (a cracked board): the connection drops
            else:
                self._link.go_silent()  # the power went: nothing more comes on it
        self.unit.after_reply()

    def _serve(self, raw: bytes) -> None:
        unit = self.unit
        self._alive = unit.watch_power()
        try:
            request = decode_message(raw)
        except FieldError:
            return self._answer({}, AE_NOT_DONE, Reason("09"))
        unit.begin_command()
        if any(tag not in request for tag in MANDATORY):  # a probe, or an ECR's mistake: refused at once
            if unit.app_crashes():
                unit.app_restart()  # the app died on it: no answer, the connection drops at the restart
                return
            time.sleep(unit.latency())
            return self._answer(request, AE_NOT_DONE, Reason("09"))
        time.sleep(unit.latency())
        self._payment(request)

    def _connected(self) -> bool:
        """False when the ECR hung up (its end of the connection is closed)."""
        sock = self._link.sock
        if sock is None:
            return False
        try:
            return not (select.select([sock], [], [], 0)[0] and not sock.recv(1, socket.MSG_PEEK))
        except OSError:
            return False

    # -- answers ----------------------------------------------------------------------------
    def _answer(self, request: dict[str, str], result: str, reason: Reason | None = None,
                extra: dict[str, str] | None = None) -> None:
        if not self._alive():
            raise _Ended("power lost")
        fields = {"CZ": VERSION, **{tag: request[tag] for tag in ECHOED if tag in request}, "AE": result}
        if reason is not None:
            fields["AF"] = reason.encode()
        fields.update(extra or {})
        sock = self._link.sock
        if sock is None:
            raise _Ended("the ECR hung up")
        if self.drop_rate and self.rng.random() < self.drop_rate:
            self.drops += 1
            raise _Ended("connection dropped (intermittent board)")
        try:
            sock.sendall(encode_message(fields))
        except OSError as exc:
            self.unit.err["err_comm"] += 1
            raise _Ended("link broken") from exc

    def _refuse(self, request: dict[str, str], code: str, message: str = "", field39: str = "",
                extra: dict[str, str] | None = None) -> None:
        self._answer(request, AE_NOT_DONE, Reason(code, field39, message), extra)

    # -- the payment ------------------------------------------------------------------------
    def _payment(self, request: dict[str, str]) -> None:
        amount_text = request["CB"]
        if not amount_text.isdigit() or int(amount_text) <= 0:
            return self._refuse(request, "09")
        if request["CD"] not in ("0", "1", "2"):
            return self._refuse(request, "12")
        if request["CD"] != "0":
            return self._refuse(request, "05", "OPERATION INTERDITE")
        if request["CE"] != self.currency:
            return self._refuse(request, "13")
        if request.get("BA") == "1":
            self._answer(request, AE_TAKEN)  # taken into account; the result follows when known
        amount = int(amount_text)
        if (s := self.sev("operator_error")) and self.rng.random() < 0.05 + 0.15 * s:
            return self._refuse(request, "06", "ABANDON")  # the cashier pressed the red key
        presented = self.card.wait(time.monotonic() + self.card_timeout_s, self._alive)
        if presented is None:
            if not self._alive():
                raise _Ended("power lost while waiting for a card")
            return self._refuse(request, "08", "TEMPS DEPASSE")
        card, technology = presented
        app = {"CC": APPLICATION[technology]}
        read = self.unit.read_card(card.pan, card.expiry, technology)
        if not self._alive():
            raise _Ended("power lost while reading the card")
        if not read.ok:
            return self._refuse(request, "07", READ_MESSAGES[read.failure], extra=app)
        if (s := self.sev("operator_error")) and self.rng.random() < 0.05 + 0.15 * s:
            return self._refuse(request, "06", "CODE FAUX", extra=app)  # PIN try limit reached
        result = self.unit.authorize(amount, card.pan, technology, self._alive)
        if not result.completed:
            raise _Ended("power lost during the sale")
        if result.reason == "app_restart":  # crashed holding the host's answer: restarts once this is out
            return self._refuse(request, "00", "ERREUR SYSTEME", extra=app)
        if result.reason in LOCAL_REFUSALS:
            code, message = LOCAL_REFUSALS[result.reason]
            return self._refuse(request, code, message, extra=app)
        if result.reason in HOST_FAILURES:
            return self._refuse(request, "11", "PAS DE REPONSE", extra=app)
        if result.host_rc != "00":
            code = "02" if result.host_rc in ("01", "02") else "04"  # referral: call the issuer
            return self._refuse(request, code, "APPEL PHONIE" if code == "02" else "REFUSEE",
                                field39=result.host_rc[:2], extra=app)
        done = {**app, "AC": result.auth or "000000", "AA": mask_pan(card.pan).replace("*", "#")}
        if request.get("CK") == "100":
            done.update(CK="100", AK=self._receipt(card, technology, amount, result.auth))
        self._answer(request, AE_DONE, extra=done)

    def _receipt(self, card: Card, technology: str, amount: int, auth: str) -> str:
        """The customer receipt, base64: its date and time are the terminal's own clock."""
        clock = self.unit.clock()
        lines = ["CARTE BANCAIRE" + (" SANS CONTACT" if technology == "contactless" else ""), card.brand.upper(),
                 clock.strftime("LE %d/%m/%Y A %H:%M:%S"), f"TERMINAL {self.unit.terminal_id}",
                 mask_pan(card.pan).replace("*", "#"), f"NUM AUTO : {auth}",
                 f"MONTANT : {amount // 100},{amount % 100:02d} EUR", "DEBIT", "TICKET CLIENT"]
        return base64.b64encode("\n".join(lines).encode("ascii")).decode("ascii")


# -- what the virtual bench asks of this protocol's module (``posbench.drivers.registry.virtual``) --
SALE_TIMEOUT_S = 5.0
"""bench.toml's ``sale_timeout`` for this virtual terminal (seconds)."""
TERMINAL_ID_PREFIX = "52"


def front_end(name: str, host_address: tuple[str, int], profile: Profile, faults: dict[str, float], *, seed: int,
              serial: str, terminal_id: str, timing: TerminalTiming, currency: str) -> VirtualCaisseApTerminal:
    """The virtual terminal of ``posbench sim --protocol NAME``."""
    return VirtualCaisseApTerminal(host_address, profile, faults, seed=seed, serial=serial,
                                   terminal_id=terminal_id, timing=timing, currency=currency)


def terminal_toml(term: VirtualCaisseApTerminal, currency: str) -> str:
    """The head of bench.toml's ``[terminal]`` for ``term``."""
    return (f'[terminal]\nprotocol = "caisse-ap"\naddress = "{term.address[0]}:{term.address[1]}"\n'
            f'currency = "{currency}"\n')
