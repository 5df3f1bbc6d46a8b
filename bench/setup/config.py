"""The bench description (bench.toml): where each device of the bench is.

Parsed with tomllib and validated with pydantic; any problem becomes a ``ConfigError`` naming the
file, the key and what was expected. Behaviour lives in drivers, not here.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, create_model,
                      field_validator, model_validator)
from pydantic_core import PydanticCustomError

from posbench.core.errors import ConfigError
from posbench.drivers import registry

DEFAULT_PROTOCOL = registry.DEFAULT


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UsbId(NamedTuple):
    """A USB device's vendor and product id, parsed once from bench.toml's "<vid>:<pid>" (hex)."""

    vid: int
    pid: int

    @classmethod
    def parse(cls, text: str) -> "UsbId":
        vid, sep, pid = text.partition(":")
        try:
            ids = cls(int(vid, 16), int(pid, 16))
            if not sep or not all(0 <= x < 0x10000 for x in ids):
                raise ValueError
        except ValueError:
            raise ValueError('expected "<vid>:<pid>" in hex, e.g. "0801:0002"') from None
        return ids

    def __str__(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}"


class BenchSection(_Section):
    name: str = "bench"
    virtual: bool = False
    """True when the description was written by ``posbench sim`` (a virtual bench)."""


class UnitSection(_Section):
    model: str | None = None
    """Model name; selects the DUT profile ``fixtures/profiles/<model>.toml``."""
    serial: str | None = None
    profile: str | None = Field(default=None, min_length=1)
    """The DUT profile, overriding the one chosen by model: a packaged profile's name
    (``"zvt-generic"``) or a path to a profile file (relative to the bench file, or absolute)."""


class _TerminalFields(_Section):
    """The ``[terminal]`` keys every protocol has; ``TerminalSection`` adds each protocol's own
    (``posbench.drivers.ecr.<protocol>.section``, found through ``posbench.drivers.registry``)."""
    protocol: str = DEFAULT_PROTOCOL
    """ECR protocol the unit speaks (``posbench.drivers.registry.names()``)."""
    port: str | None = Field(None, min_length=1, validate_default=True)
    """pyserial port or URL of the unit's ECR link (/dev/ttyUSB0, socket://h:p, rfc2217://h:p)."""
    address: str | None = Field(None, validate_default=True)
    """<host>:<port> of a unit reached over TCP; "<host>" alone where the protocol has a usual
    port (written out when bench.toml is read)."""

    @field_validator("port")
    @classmethod
    def _port(cls, v: str | None, info: ValidationInfo) -> str | None:
        protocol = info.data.get("protocol")
        link = _link(protocol)
        if v is None and link == "serial":
            raise PydanticCustomError("missing", "Field required")  # a serial-only protocol
        if v is not None and link == "tcp":
            raise ValueError(f'protocol "{protocol}" is TCP only: give address ({_tcp_forms(protocol)}), not port')
        return v

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None, info: ValidationInfo) -> str | None:
        protocol, port = info.data.get("protocol"), info.data.get("port")
        link, tcp_port = _link(protocol), _tcp_port(protocol)
        if v is None:
            if link == "either" and port is None:
                raise ValueError(f'protocol "{protocol}" needs port (serial) or address ("<host>:<port>", TCP)')
            if link == "tcp":
                default = f"; port {tcp_port} by default" if tcp_port else ""
                raise ValueError(f'protocol "{protocol}" needs address ({_tcp_forms(protocol)}{default})')
            return None
        if tcp_port and (v.endswith("]") or ":" not in v):
            v = f"{v}:{tcp_port}"  # a host alone ("192.0.2.7", "[::1]"): the protocol's usual port
        if link == "serial":
            raise ValueError(f'protocol "{protocol}" is serial only: give port, not address')
        if port is not None:
            raise ValueError("give port (serial) or address (TCP), not both")
        return _host_port(v)


def _link(protocol: object) -> str | None:
    """How ``protocol``'s unit is reached ("serial", "tcp", "either"); None for an unknown one."""
    return registry.section_model(protocol).LINK if protocol in registry.ECR_PROTOCOLS else None


def _tcp_port(protocol: object) -> int | None:
    return registry.section_model(protocol).TCP_PORT if protocol in registry.ECR_PROTOCOLS else None


def _tcp_forms(protocol: object) -> str:
    return '"<host>" or "<host>:<port>"' if _tcp_port(protocol) else '"<host>:<port>"'


def _terminal_section() -> type[_TerminalFields]:
    """``[terminal]``: the keys every protocol has, then each protocol's own, in registry order
    (a key may be given whatever the protocol; the protocol's driver reads its own)."""
    from posbench.drivers.ecr.section import EcrSection
    common = set(EcrSection.model_fields)
    own: dict[str, tuple[Any, Any]] = {}
    for name in registry.names():
        fields = registry.section_model(name).model_fields
        own.update({key: (f.annotation, f) for key, f in fields.items() if key not in common})
    rest: dict[str, tuple[Any, Any]] = {key: (f.annotation, f) for key, f in EcrSection.model_fields.items()
            if key not in _TerminalFields.model_fields}
    protocols: Any = Literal[registry.names()]  # bench.toml's error names them, as a Literal's does
    definitions: dict[str, Any] = {"protocol": (protocols, DEFAULT_PROTOCOL), **own, **rest}
    return create_model("TerminalSection", __base__=_TerminalFields, __module__=__name__, **definitions)


if TYPE_CHECKING:
    class TerminalSection(_TerminalFields):
        currency: str
        baudrate: int
        reply_timeout: float
        sale_timeout: float
        boot_timeout: float

        def __getattr__(self, name: str) -> Any: ...
else:
    TerminalSection = _terminal_section()


def split_host_port(value: str, allow_zero: bool = False) -> tuple[str, int]:
    """``"127.0.0.1:8583"`` -> ``("127.0.0.1", 8583)``, ``"[::1]:1"`` -> ``("::1", 1)``;
    ``ValueError`` says the expected form. Port 0 (any free port) only with ``allow_zero``."""
    host, sep, port = value.rpartition(":")
    low = 0 if allow_zero else 1
    if not sep or not host or not port.isdigit() or not low <= int(port) < 65536:
        raise ValueError('expected "<host>:<port>", e.g. "127.0.0.1:8583"')
    return host.strip("[]"), int(port)


def _host_port(value: str) -> str:
    split_host_port(value)
    return value


class HostSection(_Section):
    address: str
    """<host>:<port> of the acquirer the unit is pointed at: posbench's host simulator, or the
    terminal's own acquirer (as its configuration names it)."""
    log: Path | None = None
    """The host simulator's JSONL message log, read to learn what the host really answered.
    None: an acquirer that is not posbench's; the bench probes its port and sends it nothing."""
    terminal_id: str | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        return _host_port(v)

    @property
    def host_port(self) -> tuple[str, int]:
        return split_host_port(self.address)

    @property
    def ours(self) -> bool:
        """Whether the acquirer is posbench's host simulator (its log is given): only that one is
        sent the bench's own ISO 8583 echoes."""
        return self.log is not None


class UsbSection(_Section):
    backend: str = "libusb1"
    """pyusb backend: "libusb1" (devices on this host) or "usbip://<host>:<port>" (USB/IP)."""
    reader: UsbId | None = None
    """The magstripe reader, "<vid>:<pid>" in hex; default: the first known reader found."""

    @field_validator("reader", mode="before")
    @classmethod
    def _reader(cls, v: object) -> object:
        return UsbId.parse(v) if isinstance(v, str) else v

    @field_validator("backend")
    @classmethod
    def _backend(cls, v: str) -> str:
        if v == "libusb1":
            return v
        if v.startswith("usbip://"):
            _host_port(v.removeprefix("usbip://"))
            return v
        raise ValueError('expected "libusb1" or "usbip://<host>:<port>"')


NFC_PATHS = re.compile(r"/\S+|(rfc2217|socket)://\S+|usb(:[0-9a-fA-F]{4}(:[0-9a-fA-F]{4})?|:[0-9]{1,3}(:[0-9]{1,3})?)?"
                       r"|(tty|com)(:[a-zA-Z0-9-]+)?(:[a-zA-Z0-9]+)?|udp(:[^:\s]+)?(:[0-9]{1,5})?")
"""The paths nfcpy 1.0.4 accepts (its USB, TTY and UDP transports' patterns), a device path, or
a pyserial URL of a PN532's serial port (a bench room serves it by RFC 2217)."""


class NfcSection(_Section):
    path: str = Field(min_length=1)
    """An nfcpy path (usb:072f:2200, tty:USB0:pn532, udp:HOST:PORT), a device path (/dev/pts/3), or
    an rfc2217:// URL of a PN532 on HSU."""

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not NFC_PATHS.fullmatch(v):
            hint = f' (nfcpy cannot name /dev/{v.split(":")[1]}: give "/dev/{v.split(":")[1]}")' \
                if v.startswith("tty:") and "/" in v else ""
            raise ValueError('expected an nfcpy path: "usb:072f:2200" (ACR122U), "usb:BUS:DEV", '
                             '"tty:USB0:pn532", "udp:HOST:PORT", or a device path like "/dev/ttyUSB0"' + hint)
        return v


class PowerSection(_Section):
    driver: Literal["korad", "lcus-relay", "usb-hub", "manual"]
    port: str | None = None
    """pyserial port or URL of the supply or relay; for "usb-hub" the hub as "<vid>:<pid>"."""
    channel: int = Field(1, ge=1, le=8)
    """Supply channel, relay channel or hub port."""

    _hub: UsbId | None = PrivateAttr(None)

    @field_validator("port")
    @classmethod
    def _hub_port(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("driver") == "usb-hub":
            UsbId.parse(v)  # a wrong one is named at power.port
        return v

    @model_validator(mode="after")
    def _hub_ids(self) -> "PowerSection":
        if self.driver in ("korad", "lcus-relay") and not self.port:
            raise ValueError(f"the {self.driver} driver needs port = its serial port or URL (e.g. \"/dev/ttyACM0\")")
        if self.driver == "usb-hub" and self.port is not None:
            self._hub = UsbId.parse(self.port)
        return self

    @property
    def hub(self) -> UsbId | None:
        """The hub of a "usb-hub" driver, parsed from ``port`` once; None: the first hub found."""
        return self._hub


class ActuatorSection(_Section):
    """Who presents the test cards: the technician ("manual") or the virtual bench."""
    kind: Literal["manual", "virtual"] = "manual"
    address: str | None = None
    """<host>:<port> of the virtual bench's control port (kind = "virtual")."""
    technician: bool = False
    """kind = "virtual": the virtual bench's simulated technician presents the cards, with a
    person's timing and mistakes (written by ``posbench sim --technician``)."""

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        return None if v is None else _host_port(v)

    @model_validator(mode="after")
    def _technician_is_virtual(self) -> "ActuatorSection":
        if self.technician and self.kind != "virtual":
            raise ValueError('technician = true is the virtual bench\'s simulated technician: it needs kind = "virtual" '
                             "(a real technician is kind = \"manual\")")
        return self


class NetworkSection(_Section):
    """Where the unit sits on the LAN, for the address-conflict and reachability tests."""
    unit_address: str
    """The unit's IPv4 address."""
    interface: str
    """The bench's network interface on the unit's LAN (ARP probes go out here)."""
    netns: str | None = None
    """Network namespace the bench's probes run in (the virtual bench's lab); none on a real bench."""

    @field_validator("unit_address")
    @classmethod
    def _ipv4(cls, v: str) -> str:
        import ipaddress
        try:
            ipaddress.IPv4Address(v)
        except ValueError:
            raise ValueError('expected an IPv4 address, e.g. "192.168.1.50"') from None
        return v


class SimSection(_Section):
    """Where a virtual bench keeps its own state (written by ``posbench sim``)."""
    pid: int | None = None
    faults: list[str] = []
    seed: int | None = None
    control: str | None = None
    """<host>:<port> of the virtual bench's control port."""
    workdir: Path | None = None
    """The virtual bench's work directory (removed when it stops; by its launcher if it was killed)."""


class PlaceSection(_Section):
    """The labgrid place a bench description was built from (``posbench triage --place``)."""
    name: str
    coordinator: str
    """<host>:<port> of the labgrid coordinator."""
    addresses: dict[str, str] = {}
    """Resource name -> the address its serial port resolved to when the place was acquired."""


class BenchConfig(_Section):
    bench: BenchSection = BenchSection()
    unit: UnitSection = UnitSection()
    terminal: TerminalSection | None = None
    """The unit's ECR link; none when the unit is a card reader (its profile says so)."""
    host: HostSection | None = None
    usb: UsbSection | None = None
    nfc: NfcSection | None = None
    power: PowerSection | None = None
    network: NetworkSection | None = None
    sim: SimSection | None = None  # before actuator: its address may come from here
    actuator: ActuatorSection = ActuatorSection()
    place: PlaceSection | None = None
    source: Path | None = Field(None, exclude=True)

    @field_validator("actuator")
    @classmethod
    def _actuator_address(cls, v: ActuatorSection, info: ValidationInfo) -> ActuatorSection:
        """A virtual actuator without an address reaches the virtual bench's control port
        (``[sim] control``); one with neither is a mistake."""
        if v.kind == "virtual" and not v.address:
            sim = info.data.get("sim")
            if sim is None or not sim.control:
                raise ValueError('a virtual actuator needs address = "<host>:<port>" of the virtual '
                                 "bench's control port (or a [sim] control)")
            return ActuatorSection(kind="virtual", address=sim.control, technician=v.technician)
        return v


def _loc(err: Mapping[str, Any]) -> str:
    return ".".join(str(p) for p in err["loc"]) or "(top level)"


def _expected(err: Mapping[str, Any]) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        return "is not a known key (check the spelling)"
    return msg.removeprefix("Value error, ")


def parse_bench(data: dict, source: str | Path = "<bench>") -> BenchConfig:
    """Validate a parsed bench description; ``ConfigError`` names the first wrong key."""
    try:
        config = BenchConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(str(source), _loc(first), _expected(first) + more) from None
    config = config.model_copy(update={"source": Path(source)})
    if config.terminal is None:
        _reader_unit(config)
    return config


def _reader_unit(config: BenchConfig) -> None:
    """A bench without ``[terminal]`` must describe a card reader that is itself the unit: its
    ``[unit] profile`` is a reader profile, and the bench reaches the reader (``[usb]`` or ``[nfc]``)."""
    from posbench.setup.profile import profile_for_bench
    source = str(config.source)
    profile = profile_for_bench(config)
    if profile is None or not profile.is_reader:
        said = f"its profile {profile.model!r} is a payment terminal" if profile else "it names no [unit] profile"
        raise ConfigError(source, "terminal", f"is required but missing ({said}): a payment terminal is reached "
                          "through [terminal]; only a card reader that is itself the unit (a reader profile: "
                          "[unit] profile = \"magtek-hid\") goes without it")
    assert profile.reader is not None
    section = "usb" if profile.reader.reads == "usb_magstripe" else "nfc"
    if getattr(config, section) is None:
        raise ConfigError(source, section, f"is required but missing: the unit is the reader {profile.model!r}, "
                          f"reached through [{section}]")


def load_bench(path: str | Path) -> BenchConfig:
    """Read and validate ``path``; every failure is a ``ConfigError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "", f"cannot be read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"is not valid TOML: {exc}") from None
    return parse_bench(data, path)
