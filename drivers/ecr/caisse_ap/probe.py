"""Caisse-AP's discover probe: a debit request without amount on TCP (port 8888)."""
from __future__ import annotations

from posbench.drivers.probing import Answer, NoAnswer, SerialProbe, TcpProbe

from .client import TCP_PORT, probe


def ask_caisse_ap(host: str, port: int, timeout_s: float) -> Answer:
    said = probe(host, port, timeout_s=timeout_s)
    if said is None:
        raise NoAnswer("no Caisse-AP answer (a CZ field and AE)")
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return Answer("caisse-ap", "terminal", f"answered: {said}", None,
                  {"protocol": "caisse-ap", "address": address})


SERIAL: tuple[SerialProbe, ...] = ()
TCP = (TcpProbe("caisse-ap", TCP_PORT, "a debit request without amount", "CZ and AE (a refusal, AF 09)",
                ask_caisse_ap),)
