"""How a bench travels as a labgrid place, both ways: the exporter config ``posbench export``
writes from a bench description, and the bench description read back from the resources of the
acquired place.

On the place (one exporter group, named after the place):
- the terminal's, the supply's (or relay's) and the PN532's serial ports: ``RawSerialPort``
  (a device under /dev/, served by ser2net over RFC 2217 while the place is acquired, on a new
  TCP port every time), or a static ``NetworkSerialPort`` for a port that already is an
  ``rfc2217://`` / ``socket://`` URL;
- every other setting of bench.toml as a static entry per section, class ``Posbench<Section>``
  (``PosbenchUsb`` carries the USB/IP backend address of the USB readers and the hub: labgrid
  has no USB/IP export, so posbench reads the address back and reaches usbipd itself).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from posbench.setup.config import BenchConfig
from posbench.core.errors import ConfigError

SERIAL_PORTS = {"terminal": ("terminal", "port"), "supply": ("power", "port"), "nfc": ("nfc", "path")}
"""Resource name -> the bench.toml section and key of the serial port it serves."""
STATIC_PREFIX = "Posbench"
"""Class name prefix of the static entries (``PosbenchUnit``, ``PosbenchUsb``, ...)."""
LEFT_OUT = {("sim", "pid")}
"""Keys not exported: a virtual bench's pid means nothing on the client's host."""
LISTS = {("sim", "faults")}
"""Keys holding lists, exported comma-separated (labgrid's resource parameters are scalars)."""
URL_PORT = re.compile(r"(rfc2217|socket)://([^:/?]+|\[[^\]]+\]):(\d+)")
_JINJA = re.compile(r"\{[{%#]")


@dataclass(frozen=True)
class Entry:
    cls: str
    params: dict[str, Any]


def place_name(config: BenchConfig, place: str | None) -> str:
    """The place's name: ``place``, else the bench's name; ``ConfigError`` unless it is a word
    labgrid accepts (letters, digits, ``_``, ``-``)."""
    name = place or config.bench.name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
        raise ConfigError(config.source or "bench.toml", "--place" if place else "bench.name",
                          f"{name!r} cannot name a labgrid place: letters, digits, '_' and '-' only")
    return name


def _scalar(value: Any) -> Any:
    if isinstance(value, (bool, int, float)):
        return value
    return str(value)


def _serial_entry(config: BenchConfig, section: str, key: str, value: str, speed: int) -> Entry:
    """The resource serving a serial port: ``RawSerialPort`` for a device under /dev/, a static
    ``NetworkSerialPort`` for an rfc2217:// or socket:// URL; anything else is a ``ConfigError``."""
    if m := URL_PORT.fullmatch(value):
        return Entry("NetworkSerialPort", {"host": m[2].strip("[]"), "port": int(m[3]), "speed": speed,
                                           "protocol": "rfc2217" if m[1] == "rfc2217" else "raw"})
    if not value.startswith("/dev/"):  # labgrid's exporter checks the path as written, not where it points
        real = os.path.realpath(value) if value.startswith("/") else value
        hint = f"; name the device it points to, {real}" if real.startswith("/dev/") else ""
        raise ConfigError(config.source or "bench.toml", f"{section}.{key}",
                          f"{value!r} is not a device under /dev/: labgrid's RawSerialPort serves only those "
                          f"(a pseudo-terminal /dev/pts/N works), or give an rfc2217:// or socket:// URL{hint}")
    return Entry("RawSerialPort", {"port": value, "speed": speed})


def exported_entries(config: BenchConfig) -> tuple[dict[str, Entry], dict[str, Entry]]:
    """The place's serial-port resources and its static entries, from a bench description."""
    data = config.model_dump(mode="python", exclude={"source"})
    serial: dict[str, Entry] = {}
    for name, (section, key) in SERIAL_PORTS.items():
        value = (data.get(section) or {}).get(key)
        if not value or (section == "power" and data["power"]["driver"] == "usb-hub"):
            continue  # a usb-hub's "port" is the hub's USB id, reached over the USB backend
        if section == "nfc" and not value.startswith("/"):
            continue  # an nfcpy path (usb:..., tty:...): stays a static setting
        speed = config.terminal.baudrate if section == "terminal" and config.terminal else \
            115200 if section == "nfc" else 9600
        serial[name] = _serial_entry(config, section, key, value, speed)
    static: dict[str, Entry] = {}
    for section, values in data.items():
        if not isinstance(values, dict):
            continue
        params = {}
        for key, value in values.items():
            if value is None or (section, key) in LEFT_OUT or any(
                    (section, key) == where and name in serial for name, where in SERIAL_PORTS.items()):
                continue
            if (section, key) in LISTS:
                value = ",".join(str(v) for v in value)
            elif section == "usb" and key == "reader":
                value = str(config.usb.reader) if config.usb and config.usb.reader else None
                if value is None:
                    continue
            text = str(value)
            if _JINJA.search(text):
                raise ConfigError(config.source or "bench.toml", f"{section}.{key}",
                                  "holds Jinja2 syntax ('{{', '{%' or '{#'): labgrid renders its exporter config "
                                  "as a template")
            params[key] = _scalar(value)
        if params:
            static[f"posbench-{section}"] = Entry(STATIC_PREFIX + section.title(), params)
    return serial, static


def place_tags(config: BenchConfig) -> dict[str, str]:
    """Tags for the place (``labgrid-client set-tags``; ``--reserve`` matches them): the model
    (from the DUT profile if the bench names one), its vendor, the ECR protocol, the bench."""
    from posbench.setup.profile import profile_for_bench
    tags = {"bench": config.bench.name,
            **({"protocol": config.terminal.protocol} if config.terminal else {"unit": "reader"})}
    if config.unit.model:
        tags["model"] = config.unit.model
    try:
        profile = profile_for_bench(config)
    except ConfigError:
        profile = None
    if profile is not None:
        tags["model"] = profile.model
        if profile.vendor:
            tags["vendor"] = profile.vendor
    return {k: re.sub(r"[^A-Za-z0-9_.-]+", "_", v) for k, v in tags.items() if v}


def exporter_config(config: BenchConfig, place: str) -> str:
    """The labgrid exporter config (YAML, a Jinja2 template to labgrid) serving ``config`` as ``place``."""
    import jinja2
    serial, static = exported_entries(config)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["yaml"] = json.dumps  # a JSON scalar is a YAML flow scalar
    template = env.from_string(files("posbench.render.templates").joinpath("exporter.yaml.j2").read_text(encoding="utf-8"))
    return template.render(place=place, bench_name=config.bench.name, source=str(config.source or "bench.toml"),
                           location=f"posbench bench {config.bench.name}", serial=serial, static=static) + "\n"


def place_commands(config: BenchConfig, place: str, coordinator: str) -> list[str]:
    """The ``labgrid-client`` commands that create the place for this exporter group, tagged."""
    import shlex
    base = f"labgrid-client -x {shlex.quote(coordinator)} -p {shlex.quote(place)}"
    tags = " ".join(shlex.quote(f"{k}={v}") for k, v in place_tags(config).items())
    return [f"{base} create", f"{base} add-match {shlex.quote(f'*/{place}/*/*')}", f"{base} set-tags {tags}"]


# -- the client's side ------------------------------------------------------------------------------

def serial_url(params: dict[str, Any]) -> str | None:
    """The pyserial URL of a ``NetworkSerialPort``'s parameters, None while it is not served.
    ser2net does not acknowledge DTR on a pseudo-terminal, so pyserial's RFC 2217 client must
    not wait for that answer (``ign_set_control``, as labgrid's own serial driver does)."""
    host, port = params.get("host"), params.get("port")
    if not host or not port:
        return None
    host = f"[{host}]" if ":" in str(host) else host
    if params.get("protocol") == "raw":
        return f"socket://{host}:{port}"
    return f"rfc2217://{host}:{port}?ign_set_control"


def bench_data(place: str, resources: dict[str, tuple[str, dict[str, Any], bool]]) -> tuple[dict, dict[str, str]]:
    """The bench description (the dict bench.toml would parse to) of an acquired place, and the
    addresses its serial ports resolved to (resource name -> URL). ``ConfigError`` when the
    place carries no posbench bench, or a port is not served."""
    data: dict[str, dict[str, Any]] = {}
    for name, (cls, params, _avail) in resources.items():
        if cls.startswith(STATIC_PREFIX) and name.startswith("posbench-"):
            section = name.removeprefix("posbench-")
            values = {k: v for k, v in params.items() if k != "extra"}
            for key in [k for s, k in LISTS if s == section and k in values]:
                values[key] = [v for v in str(values[key]).split(",") if v]
            data[section] = values
    if "terminal" not in data:
        raise ConfigError(f"place {place}", "", "carries no posbench bench (no posbench-terminal entry): "
                          "serve it with an exporter config written by `posbench export`")
    addresses: dict[str, str] = {}
    for name, (section, key) in SERIAL_PORTS.items():
        if name not in resources:
            continue
        cls, params, avail = resources[name]
        url = serial_url(params) if avail else None
        if url is None:
            raise ConfigError(f"place {place}", name, f"its {cls} is not served now (is its exporter running?)")
        data.setdefault(section, {})[key] = url
        addresses[name] = url
    data.setdefault("bench", {})["name"] = place
    return data, addresses


def write_bench_toml(data: dict, path: Path) -> Path:
    """Write ``data`` (``bench_data``'s description) as bench.toml; only the value types it holds."""
    lines = ["# Written by posbench from a labgrid place: valid while that place is acquired.\n"]
    for section, values in data.items():
        lines.append(f"[{section}]\n")
        for key, value in values.items():
            lines.append(f"{key} = {_toml(value)}\n")
        lines.append("\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string is a JSON string for these values
