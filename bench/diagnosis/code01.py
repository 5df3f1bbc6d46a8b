"""The code-01 origin (``tests/hil/test_code01.py``): from what a unit showed for each sale and
what its acquirer answered, which 01s the issuer sent and which the unit made itself, what the
sales the unit failed itself point to, and how often it reached its host.

Two sources say what the acquirer answered: the terminal's own report (``SaleResult.acquirer_code``)
and posbench's host log where the bench runs the host. The log decides where both speak; where
they disagree the unit misreports its host's answer (``application``).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from posbench.spec.evidence import Evidence

NETWORK_CAUSES = ("network_unstable", "firewall", "ip_conflict")
"""Causes about reaching the host: a sale refused for them did go (or try to go) online."""


def origin_by(code: str | None) -> str | None:
    """The origin of a 01 by one source's acquirer code (None: that source does not say)."""
    return None if code is None else "issuer" if code == "01" else "terminal"


@dataclass(frozen=True)
class SaleSeen:
    """One sale of the check, as the bench saw it."""

    stan: str
    display_code: str
    """What the unit showed ("" for none)."""
    reason: str
    reported: str | None
    """The terminal's own word on its acquirer's code (None: its report carries none)."""
    host_answered: bool
    """The terminal says it reached its host."""
    logged: bool = False
    """The bench runs the host and keeps its log: ``log_code`` is what it answered."""
    log_code: str | None = None
    found: tuple[str, str] | None = None
    """(cause, strength) a sale the unit failed itself points to (its protocol's rule), or None."""
    card_read: str | None = None
    """The terminal's report of the card read ("no": refused before a card was read)."""

    @property
    def host_code(self) -> str | None:
        """The acquirer's answer: the host log's where the bench keeps one, else the report's."""
        return self.log_code if self.logged else self.reported or None


@dataclass(frozen=True)
class Code01:
    """One 01 whose origin was told, for ``Recorder.code01``."""

    origin: str
    stan: str
    host_code: str | None
    reason: str


@dataclass
class Origins:
    """What the sales say: the 01s with their origin, the evidence, the STANs of 01s whose origin
    neither source tells, and the ``terminal_01_count`` and ``sale_host_answered_rate`` readings."""

    code01: list[Code01] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    untold: list[str] = field(default_factory=list)
    terminal_01_count: int = 0
    sale_host_answered_rate: float = 0.0


def origins(sales: Sequence[SaleSeen], tried: int) -> Origins:
    """Judge the ``sales`` that answered out of ``tried`` sales run (those that did not answer
    count in the rate's denominator). A sale refused before it went online (for a cause not about
    the network, or before a card was read) is left out of the host-answered rate."""
    out = Origins()
    issuer: list[str] = []
    local = 0
    failures: dict[tuple[str, str], list[str]] = defaultdict(list)  # (cause, strength) -> what failed
    mismatched: list[str] = []
    answered = offline = 0
    logged = any(s.logged for s in sales)
    for sale in sales:
        host_code = sale.host_code
        answered += host_code is not None if sale.logged else sale.host_answered
        if sale.logged and sale.reported and host_code and sale.reported != host_code:
            mismatched.append(f"STAN {sale.stan or '?'}: reported the acquirer's {sale.reported}, host sent {host_code}")
        if sale.display_code == "01":
            by_log = origin_by(host_code or "") if sale.logged else None
            by_report = origin_by(sale.reported)
            origin = by_log or by_report
            if origin is None:
                out.untold.append(sale.stan or "?")
                continue
            if by_log and by_report and by_log != by_report:
                mismatched.append(f"STAN {sale.stan or '?'}: showed 01, its report says "
                                  f"{'the acquirer sent 01' if by_report == 'issuer' else 'the acquirer did not'}, "
                                  f"host log {host_code or 'has no answer'}")
            out.code01.append(Code01(origin, sale.stan, host_code, sale.reason))
            if origin == "issuer":
                issuer.append(sale.stan)
            else:
                local += 1
                if sale.found:
                    failures[sale.found].append(f"01 shown for '{sale.reason}' (STAN {sale.stan})")
        elif host_code is not None and sale.display_code and sale.display_code != host_code:
            # (a unit that shows no code, "", never got the host's answer: the host link's doing)
            mismatched.append(f"STAN {sale.stan}: showed {sale.display_code}, host sent {host_code}")
        elif sale.display_code != "00" and sale.found:
            failures[sale.found].append(f"{sale.display_code}: {sale.reason or 'no reason given'}")
            if host_code is None and sale.found[0] not in NETWORK_CAUSES:
                offline += 1  # refused before it went online: not a question of reaching the host
        elif host_code is None and sale.card_read == "no":
            offline += 1  # refused before a card was read (Concert: no reason given): not online either
    n = tried
    if issuer:
        source = "host log shows" if logged else "the terminal's report gives the acquirer's"
        out.evidence.append(Evidence.of("issuer_referral", "decisive",
                                        f"{source} field 39 = 01 for {len(issuer)} of {n} sales "
                                        f"(STAN {', '.join(issuer)}) and the unit showed exactly that"))
    for (cause, strength), notes in failures.items():
        out.evidence.append(Evidence.of(cause, "strong" if len(notes) > 1 and strength != "weak" else strength,
                                        f"the unit failed {len(notes)} of {n} sales itself: " + "; ".join(notes[:3])))
    if mismatched:
        out.evidence.append(Evidence.of("application", "strong",
                                        "unit showed another code than the host sent: " + "; ".join(mismatched)))
    out.terminal_01_count = local
    out.sale_host_answered_rate = round(answered / max(1, n - offline), 3)
    return out


def untold_why(untold: Sequence[str], tried: int, protocol: str) -> str:
    """Why ``terminal_01_count`` is not measured: the origin of some 01s cannot be told."""
    return (f"the origin of the code 01 shown in {len(untold)} of {tried} sales (STAN {', '.join(untold[:5])}) "
            f"cannot be told: the {protocol} terminal's report carried no acquirer code and the bench has no [host] log")
