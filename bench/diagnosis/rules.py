"""Protocol rules: what a code the unit reported (an agent failure reason, a protocol's result
code, terminal status or lock bit) says about the causes of code 01. Each protocol's tables live
in its driver package (``posbench.drivers.ecr.<protocol>.codes``); these dispatch to it by
protocol name, so tests call them and stay free of cause tables. The bench rules, which read a
whole run, are in ``posbench.diagnosis.bench_rules``.
"""
from __future__ import annotations

from posbench.drivers import registry
from posbench.drivers.terminal import SaleResult
from posbench.spec.evidence import Evidence, Found, Reading

SALE_CAUSES = {name: registry.codes(name).SALE_CAUSES for name in registry.names()}
"""Causes a sale the unit failed itself can speak to, per protocol. A Concert refusal gives no
reason (status 7): it speaks to no cause by itself; the read-path sales and the host log do."""
STATUS_CAUSES = tuple(sorted({c for name in registry.names() for c in registry.codes(name).STATUS_CAUSES}))
"""Causes a terminal status code or lock bit can speak to (ZVT's, the one protocol that reports them)."""


def sale_failure_cause(protocol: str, sale: SaleResult) -> tuple[str, str] | None:
    """What a sale the unit failed itself (``posbench.drivers.terminal.SaleResult``) points to."""
    return registry.codes(protocol).sale_failure_cause(sale)


def sale_read_failure(protocol: str, sale: SaleResult, technology: str) -> str:
    """Why a sale did not read the card presented by ``technology`` ("" when it read it): the
    protocol's code with the technology the terminal reported (else the one presented). A
    refusal for another reason (host, keys) is no read error, nor is an abort before any card
    was read (ZVT 6C, Caisse-AP AF 08): a cashier's abort or a missed presentation is no reader
    fault. Concert has no result code: a refusal whose report carries no PAN is a card not read."""
    return registry.codes(protocol).sale_read_failure(sale, technology)


def terminal_status(protocol: str, status, limit: str) -> Found:
    """What a terminal status code and lock bits (``posbench.drivers.terminal.Status``) say: the
    declared measurements ``terminal_status`` and ``locks``, and the evidence each code or lock
    gives (``limit``: the bound limit of ``terminal_status``, named in that evidence)."""
    codes = registry.codes(protocol)
    found = Found()
    code = status.terminal_status
    if code is None:
        found.unmeasured["terminal_status"] = "the terminal's status enquiry gave no terminal status byte"
    else:
        text = f"the terminal reports status {code:02X}: {status.terminal_status_text}"
        found.readings.append(Reading("terminal_status", f"{code:02X}", note=text))
        if (cause := codes.status_cause(code)):
            found.evidence.append(Evidence.of(cause[0], cause[1], text, measurement="terminal_status",
                                              value=f"{code:02X}", limit=limit))
    found.readings.append(Reading("locks", len(status.locks), note="locks set: " + (", ".join(status.locks) or "none")))
    for lock in status.locks:
        if (cause := codes.lock_cause(lock)):
            found.evidence.append(Evidence.of(cause[0], cause[1], f"the terminal has the lock \"{lock}\" set",
                                              measurement="locks", value=lock, limit="none set"))
    return found



