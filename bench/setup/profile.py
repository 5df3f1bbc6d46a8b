"""DUT profiles: what a healthy unit of a model does (versions, limits, test sizes)."""
from __future__ import annotations

import tomllib
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from posbench.core.errors import ConfigError
from posbench.drivers import registry
from posbench.core.limits import Limit

PROFILE_DIR = Path(str(files("posbench.fixtures"))) / "profiles"
"""The DUT profiles shipped as package data (the repository's ``fixtures/profiles/``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FirmwareSpec(_Strict):
    expected: str
    """The release a healthy unit of this model should run."""
    minimum: str
    """The oldest release the vendor still supports."""


class TestSizes(_Strict):
    link_commands: int = Field(24, ge=4, le=10_000)
    """ECR commands sent by the link health test."""
    sale_amounts: list[int] = []
    """Amounts (minor units) of the sales the code-01 origin test runs (a terminal needs one at
    least; a reader runs no sales)."""
    log_records: int = Field(60, ge=1, le=10_000)
    """Transaction log records read by the log pattern test."""
    echoes: int = Field(12, ge=1, le=1000)
    """ISO 8583 echo requests the network test sends on each path."""


class SprtSpec(_Strict):
    """A read test decided by a sequential probability ratio test (see ``posbench.spec.sprt``)."""
    p0: float = Field(gt=0, lt=1)
    """Failure rate of a healthy read path (per read)."""
    p1: float = Field(gt=0, lt=1)
    """Failure rate from which the path counts as faulty."""
    alpha: float = Field(0.01, gt=0, lt=0.5)
    """Chance of calling a healthy path faulty."""
    beta: float = Field(0.05, gt=0, lt=0.5)
    """Chance of calling a faulty path healthy."""
    max_trials: int = Field(50, ge=5, le=1000)
    cards: list[str] = Field(min_length=1)
    """Deck ids presented in turn (``fixtures/cards/deck.toml``)."""
    timeout_s: float = Field(10.0, gt=0, le=300)
    """Seconds one read may take before it counts as a failed read (reason ``timeout``)."""


class ReadPaths(_Strict):
    """The unit's read paths; a reader has only its own (a swipe reader no tap)."""
    swipe: SprtSpec | None = None
    tap: SprtSpec | None = None
    chip: SprtSpec | None = None


class PowerSpec(_Strict):
    """The unit's supply: what the bench sets and what a healthy unit tolerates."""
    nominal_v: float = Field(gt=0, le=60)
    """Volts the bench supply is set to."""
    current_limit_a: float = Field(gt=0, le=20)
    """Amps the bench supply limits to."""
    min_input_v: float = Field(gt=0, le=60)
    """Volts below which the unit resets (its minimum input); a reading under it is a sag."""
    brownout_v: float = Field(gt=0, le=60)
    """Volts for the brownout test (below the unit's minimum input)."""
    brownout_s: float = Field(0.5, gt=0, le=30)
    """Seconds the supply stays at ``brownout_v``."""
    soak_cycles: int = Field(3, ge=1, le=100_000)
    """Power cycles of the short (default) soak."""
    off_s: float = Field(0.5, gt=0, le=60)
    """Seconds the unit stays unpowered in a cycle."""
    sample_interval_s: float = Field(0.05, gt=0, le=5)
    """Seconds between supply readings in a trace."""
    brownout_at_s: float = Field(0.2, ge=0, le=60)
    """Seconds into a sale at which the brownout test drops the supply."""
    usb_watch_s: float = Field(3.0, gt=0, le=600)
    """Seconds the USB stability test watches the unit's devices stay enumerated."""


if TYPE_CHECKING:
    Protocol = str
else:
    Protocol = Literal[registry.sim_names()]
"""An ECR protocol, by the virtual bench's names (``posbench.drivers.registry.sim_names``: "zvt-tcp"
is ZVT over TCP)."""

Reader = Literal["usb_magstripe", "nfc"]
"""A reader of the unit's that the bench reaches directly, beside its ECR link."""

READER_INTERFACES: dict[str, Reader] = {"usb-hid": "usb_magstripe", "usb-keyboard": "usb_magstripe",
                                        "usb-ccid": "nfc", "uart": "nfc"}
"""How a reader that is the unit talks to the bench -> the kind of reader it is."""


class ReaderSpec(_Strict):
    """A card reader that is itself the unit (``kind = "reader"``): how the bench finds it."""
    interface: Literal["usb-hid", "usb-keyboard", "usb-ccid", "uart"]
    """A USB HID magstripe reader, one that types as a keyboard, a USB CCID contactless reader
    (ACR122U: a PN532 behind CCID), or a contactless chip on a serial port (a PN532 board)."""
    usb: str | None = Field(None, pattern=r"^[0-9a-f]{4}:[0-9a-f]{4}$")
    """Its USB identity "<vid>:<pid>" in lower-case hex (None for a reader on a serial port)."""
    manufacturer: str = ""
    """Its USB manufacturer string, as it reports it."""
    product: str = ""
    """Its USB product string (or the chip a serial reader reports: "PN532")."""
    baudrate: int = Field(115200, ge=1200, le=4_000_000)
    """A serial reader's line speed (bits/s)."""

    @model_validator(mode="after")
    def _usb_or_serial(self) -> ReaderSpec:
        on_usb = self.interface.startswith("usb-")
        if on_usb and self.usb is None:
            raise ValueError('a USB reader names its USB identity: usb = "<vid>:<pid>"')
        if not on_usb and self.usb is not None:
            raise ValueError("a reader on a serial port has no USB identity: leave usb out")
        return self

    @property
    def reads(self) -> Reader:
        return READER_INTERFACES[self.interface]


class Profile(_Strict):
    model: str
    kind: Literal["terminal", "reader"] = "terminal"
    """A payment terminal (judged through its ECR protocol and the bench's instruments) or a
    card reader that is itself the unit (judged directly: its reads, its USB, its power)."""
    reader: ReaderSpec | None = None
    """How the bench finds a reader that is the unit (``kind = "reader"`` only)."""
    vendor: str = ""
    firmware: FirmwareSpec | None = None
    """None in a generic profile (any model speaking a protocol): releases are not judged."""
    components: dict[str, list[str]] = {}
    """Allowed versions of each firmware component."""
    keys_required: list[str] = []
    boot_time_s: float = Field(gt=0)
    """Seconds a healthy unit takes from reboot until it answers again."""
    local_failure_code: str = "01"
    """The code this model's firmware displays for a failure it produced itself."""
    limits: dict[str, Limit]
    tests: TestSizes = Field(default_factory=lambda: TestSizes.model_validate({}))
    read_paths: ReadPaths | None = None
    power: PowerSpec | None = None
    protocols: list[Protocol] = []
    """The ECR protocols this model speaks."""
    unknown: dict[str, str] = {}
    """Limit name -> why a unit of this profile cannot tell it (its measurement stays unmeasured)."""
    exposes: list[Reader] = []
    """The unit's readers the bench reaches directly beside its ECR link (none for a PCI payment
    terminal: its readers are inside it)."""
    acquirer: Literal["bench", "own"] = "own"
    """"bench": the unit is pointed at posbench's acquirer host simulator (the bench reads its
    log); "own": it talks to its own acquirer and the bench sees no host log."""
    source: Path | None = Field(None, exclude=True)

    @field_validator("unknown")
    @classmethod
    def _known_or_unknown(cls, unknown: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        both = sorted(set(info.data.get("limits", {})) & set(unknown))
        if both:
            raise ValueError(f"{both[0]!r} is both in [limits] and in [unknown]: keep one")
        return unknown

    @model_validator(mode="after")
    def _kind(self) -> Profile:
        if self.kind == "reader":
            if self.reader is None:
                raise ValueError('a reader profile (kind = "reader") needs a [reader] table: interface, usb')
            if self.protocols:
                raise ValueError("a reader that is the unit speaks no ECR protocol: leave protocols out")
            path = {"usb_magstripe": "swipe", "nfc": "tap"}[self.reader.reads]
            if self.read_paths is None or getattr(self.read_paths, path) is None:
                raise ValueError(f"a {self.reader.interface} reader needs [read_paths.{path}]")
        else:
            if self.reader is not None:
                raise ValueError('[reader] is for a reader that is itself the unit: add kind = "reader"')
            if not self.tests.sale_amounts:
                raise ValueError("tests.sale_amounts: a terminal needs one sale amount at least")
            if self.read_paths is not None and None in (self.read_paths.swipe, self.read_paths.tap,
                                                        self.read_paths.chip):
                raise ValueError("read_paths: a terminal's profile gives swipe, tap and chip")
        return self

    @property
    def is_reader(self) -> bool:
        return self.kind == "reader"

    def limit(self, name: str) -> Limit:
        try:
            return self.limits[name]
        except KeyError:
            raise ConfigError(str(self.source), f"limits.{name}",
                              "is missing from the DUT profile") from None


def version_tuple(version: str) -> tuple[int, ...]:
    """``"3.10.2"`` -> ``(3, 10, 2)``; non-numeric parts count as 0; "3.2" equals "3.2.0"."""
    parts = [int(p) if p.isdigit() else 0 for p in version.strip().split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def load_profile(path: str | Path) -> Profile:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "", "DUT profile not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), "", f"cannot be read as TOML: {exc}") from None
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(str(path), key, err["msg"].removeprefix("Value error, ")) from None
    return profile.model_copy(update={"source": path})


def is_profile_name(ref: str) -> bool:
    """A bare profile name (``zvt-generic``), not a path: no "/" and no ``.toml``."""
    return "/" not in ref and "\\" not in ref and not ref.lower().endswith(".toml")


def known_profiles() -> list[str]:
    """The names of the packaged profiles."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def find_profile(ref: str | Path, base: Path | None = None, file: str = "", key: str = "unit.profile",
                 by_name: bool = False) -> Profile:
    """The one place a profile reference becomes a profile: a bare name (``"zvt-generic"``, or a
    model, any case) is the packaged profile ``PROFILE_DIR/<name>.toml``, from a checkout or an
    installed wheel alike; anything else is a path, relative to ``base`` (the bench file's
    directory) unless absolute. Not found: a ``ConfigError`` on ``file``'s ``key`` listing the
    known names and both forms. ``by_name``: ``ref`` is a model's name whatever it holds."""
    text = str(ref)
    if by_name or is_profile_name(text):
        path = PROFILE_DIR / f"{text.lower()}.toml"
        if path.parent == PROFILE_DIR and path.is_file():
            return load_profile(path)
        raise ConfigError(file or str(path), key, f"no packaged DUT profile {text!r} (known: "
                          f"{', '.join(known_profiles())}): name one of these, or give a path to a profile "
                          f"file, relative to the bench file or absolute (profile = \"profiles/my-model.toml\")")
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    if not path.exists():
        raise ConfigError(file or str(path), key, f"DUT profile {path} not found: give a path to a profile "
                          f"file, relative to the bench file or absolute, or a packaged profile's name "
                          f"(known: {', '.join(known_profiles())}; profile = \"zvt-generic\")")
    return load_profile(path)


def profile_for_model(model: str) -> Profile:
    """The packaged profile of ``model`` (``fixtures/profiles/<model lower-case>.toml``)."""
    return find_profile(model, key="unit.model", by_name=True)


def days_since(iso_day: str, today: date) -> int:
    return (today - date.fromisoformat(iso_day)).days


def profile_for_bench(config) -> Profile | None:
    """The DUT profile a bench description (``posbench.setup.config.BenchConfig``) names: ``[unit] profile``
    (a packaged profile's name, or a path relative to the bench file), else the packaged one of
    ``[unit] model``; None when it names neither (the profile then follows the model the unit
    reports)."""
    unit = config.unit
    source = str(config.source) if config.source else ""
    base = config.source.parent if config.source else None
    if unit.profile:
        return find_profile(unit.profile, base, source, "unit.profile")
    return find_profile(unit.model, base, source, "unit.model", by_name=True) if unit.model else None
