"""The cause taxonomy: stable ids for what lies behind a code 01, with name, group and repair action."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cause:
    id: str
    name: str
    """What a technician calls it (reports lead with it; the id is for machines)."""
    group: str
    meaning: str
    action: str
    blames_unit: bool = True
    reader_name: str = ""
    """What a repair technician calls it when the unit is a card reader itself ("" : not a cause
    a reader alone can have)."""
    reader_action: str = ""


CAUSES: dict[str, Cause] = {c.id: c for c in [
    Cause("msr_head", "Magstripe read head", "hardware", "magstripe head/sensor fault",
          "clean or replace the MSR read head", reader_name="Magstripe read head",
          reader_action="clean the head with a cleaning card; if swipes still fail, replace the head"),
    Cause("chip_contacts", "Chip reader contacts", "hardware", "contact (EMV chip) reader fault",
          "clean or replace the chip reader contacts"),
    Cause("nfc_antenna", "Contactless antenna", "hardware", "contactless antenna/front end",
          "check the contactless antenna cable and replace the antenna/front-end board",
          reader_name="Contactless antenna",
          reader_action="check the antenna's connection to the reader board; replace the antenna or the reader"),
    Cause("pcb_intermittent", "Main board (intermittent fault)", "hardware", "cracked joint, short, corrosion",
          "inspect the main board for cracked joints or corrosion; reflow or replace it",
          reader_name="Reader board (intermittent fault)",
          reader_action="inspect the reader's board and its USB or UART connector for cracked joints; "
                        "reflow or replace the reader"),
    Cause("power_supply", "Power supply", "hardware", "unstable supply, brownout",
          "replace the power adapter or battery; check the supply rail under load",
          reader_name="Reader power (USB port or supply)",
          reader_action="check the reader's cable and the port feeding it (a hub port that sags under load); "
                        "if the reader browns out on a good port, replace it"),
    Cause("firmware_driver", "Firmware or driver version", "software", "outdated/incompatible driver or firmware",
          "install the component versions the model profile allows", reader_name="Reader firmware",
          reader_action="update the reader's firmware to a release its profile allows (the vendor's tool)"),
    Cause("application", "Payment application", "software", "payment app hang or crash",
          "reinstall the payment application; send the unit's app log to the vendor"),
    Cause("resources", "Memory or CPU exhausted", "software", "memory/CPU exhaustion",
          "clear the transaction journal and reboot; update the app if memory keeps leaking"),
    Cause("network_unstable", "Unstable network", "network", "loss, latency, drops",
          "check cabling, switch port and Wi-Fi signal between the unit and the host"),
    Cause("ip_conflict", "IP address conflict", "network", "duplicate IP on the LAN",
          "give the unit a unique address (or a DHCP reservation)"),
    Cause("firewall", "Firewall blocks the host", "network", "outbound path to the host blocked",
          "open the host port on the site firewall"),
    Cause("operator_error", "Operator error", "human", "wrong procedure or PIN at the counter",
          "retrain the operator: PIN entry, leave the card in until prompted, check the amount",
          blames_unit=False),
    Cause("maintenance", "Overdue maintenance", "human", "overdue care: stale firmware, dirty head, clock drift",
          "perform scheduled maintenance: update firmware to the profile minimum, set the clock"),
    Cause("data_loss", "Lost configuration or keys", "human", "deleted config, keys or transaction data",
          "reload the terminal configuration and inject the keys again"),
    Cause("issuer_referral", "Issuer referral", "none",
          "the host really answered 01 (refer to card issuer): the unit is fine",
          "no repair: the cardholder must contact the issuing bank", blames_unit=False),
]}


READER_CAUSES = tuple(c.id for c in CAUSES.values() if c.reader_name)
"""The causes a card reader that is itself the unit can have: its head or antenna, its board,
its USB power, its firmware (no ECR link, no sale, no acquirer: nothing else applies)."""


def silent_cause(kind: str) -> str:
    """What a unit that stops answering on a live supply points to: a terminal's payment
    application (its hardware runs, its software hangs); a card reader (``kind`` "reader") has no
    application: its controller board."""
    return "pcb_intermittent" if kind == "reader" else "application"


def get(cause_id: str) -> Cause:
    """Return the cause for ``cause_id``; ``KeyError`` names the valid ids."""
    try:
        return CAUSES[cause_id]
    except KeyError:
        raise KeyError(f"unknown cause id {cause_id!r}; known: {', '.join(CAUSES)}") from None


def name(cause_id: str, kind: str = "terminal") -> str:
    """The cause's name (``kind`` "reader": as it is called when the unit is a card reader); an id
    this posbench does not know (a newer store) is shown as it is."""
    cause = CAUSES.get(cause_id)
    if cause is None:
        return cause_id
    return cause.reader_name if kind == "reader" and cause.reader_name else cause.name


def action(cause_id: str, kind: str = "terminal") -> str:
    """What to do about the cause (for a card reader that is the unit: ``kind`` "reader")."""
    cause = get(cause_id)
    return cause.reader_action if kind == "reader" and cause.reader_action else cause.action
