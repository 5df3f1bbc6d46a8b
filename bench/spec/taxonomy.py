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


CAUSES: dict[str, Cause] = {c.id: c for c in [
    Cause("msr_head", "Magstripe read head", "hardware", "magstripe head/sensor fault",
          "clean or replace the MSR read head"),
    Cause("chip_contacts", "Chip reader contacts", "hardware", "contact (EMV chip) reader fault",
          "clean or replace the chip reader contacts"),
    Cause("nfc_antenna", "Contactless antenna", "hardware", "contactless antenna/front end",
          "check the contactless antenna cable and replace the antenna/front-end board"),
    Cause("pcb_intermittent", "Main board (intermittent fault)", "hardware", "cracked joint, short, corrosion",
          "inspect the main board for cracked joints or corrosion; reflow or replace it"),
    Cause("power_supply", "Power supply", "hardware", "unstable supply, brownout",
          "replace the power adapter or battery; check the supply rail under load"),
    Cause("firmware_driver", "Firmware or driver version", "software", "outdated/incompatible driver or firmware",
          "install the component versions the model profile allows"),
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


def get(cause_id: str) -> Cause:
    """Return the cause for ``cause_id``; ``KeyError`` names the valid ids."""
    try:
        return CAUSES[cause_id]
    except KeyError:
        raise KeyError(f"unknown cause id {cause_id!r}; known: {', '.join(CAUSES)}") from None


def name(cause_id: str) -> str:
    """The cause's name; an id this posbench does not know (a newer store) is shown as it is."""
    cause = CAUSES.get(cause_id)
    return cause.name if cause is not None else cause_id
