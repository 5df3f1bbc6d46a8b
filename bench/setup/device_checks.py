"""One check per bench device: open it through its own driver with short timeouts, identify it
where its protocol allows, and say what was found or what to check (``Check``).

Used by ``posbench.setup.preflight``, which runs them all at once. A check raises ``ConfigError`` for
a mistake in the description (a directory as a port); everything else is a ``Check``.
"""
from __future__ import annotations

import errno
import grp
import os
import re
import socket
import stat
import time
from dataclasses import dataclass
from typing import TypeVar, cast

from posbench.drivers import registry
from posbench.setup.config import BenchConfig, split_host_port
from posbench.core.errors import BenchError, ConfigError, PortUnavailable, UnitError, UnitNotResponding

_S = TypeVar("_S")

OK, WARN, FAIL, ABSENT = "ok", "warn", "fail", "absent"
"""Check states. ``ABSENT``: a reader inside the unit is not there; the preflight decides
whether that is the bench's (``FAIL``) or may be the unit's (``WARN``) from the terminal's check."""
PROBE_S = 1.5
"""Seconds a device has to answer its identity question."""
BOOT_WAIT_S = 5.0
"""Seconds a silent unit is asked again (it may be booting) before it is a warning; within the
preflight's own deadline."""
READER_WAIT_S = 3.0
"""Seconds a reader of the unit may take to appear (a USB device re-enumerating is gone ~0.3 s)."""
DISCOVER = "`posbench discover` lists ports"
UDEV = "or install the udev rules: `posbench udev-rules | sudo tee /etc/udev/rules.d/70-posbench.rules`"


@dataclass(frozen=True)
class Check:
    device: str
    """What the device is ("terminal", "supply", "magstripe reader", ...)."""
    where: str
    """Its port, address or path as bench.toml names it."""
    state: str
    said: str
    """What was found, or what went wrong."""
    hint: str = ""
    """What to check when it was not found."""


def local_node(config: BenchConfig, key: str, path: str) -> os.stat_result | None:
    """The device node ``path`` (a local port or reader), None when it does not exist;
    ``ConfigError`` naming the bench file and ``key`` when it is no device node."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ENOTDIR, EACCES on a parent directory: not a usable port either
        raise ConfigError(str(config.source), key, f"{path} cannot be looked at: {exc.strerror}") from None
    kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a regular file" if stat.S_ISREG(st.st_mode)
            else None if stat.S_ISCHR(st.st_mode) else "not a character device")
    if kind:
        raise ConfigError(str(config.source), key, f"{path} is {kind}, not a serial port or device node "
                          f"(a port looks like /dev/ttyUSB0; {DISCOVER})")
    return st


def port_problem(device: str, path: str, detail: str) -> Check:
    """Why a local port that the driver could not open failed, with what to do about it."""
    if not os.path.exists(path):
        return Check(device, path, FAIL, f"no such port {path}",
                     f"is the USB-serial cable plugged in? {DISCOVER}")
    if not os.access(path, os.R_OK | os.W_OK):
        return Check(device, path, FAIL, f"permission denied on {path}", permission_hint(path))
    if "another program" in detail:
        return Check(device, path, FAIL, detail, f"`fuser -v {path}` names it (ModemManager probes new "
                     "serial ports: the udev rules of `posbench udev-rules` tell it to leave them alone)")
    return Check(device, path, FAIL, detail, f"unplug and replug the adapter; {DISCOVER}")


def permission_hint(path: str) -> str:
    try:
        group = grp.getgrgid(os.stat(path).st_gid).gr_name
    except (OSError, KeyError):
        group = "dialout"
    if group in ("root", "tty", "nogroup", "nobody"):  # none a technician should join (or unmapped)
        group = "dialout"
    return f"add yourself to the `{group}` group (`sudo usermod -aG {group} $USER`, then log in again), {UDEV}"


def _described(section: _S | None, name: str) -> _S:
    """A section of bench.toml a check needs; the preflight runs the check only when it is there."""
    if section is None:
        raise ValueError(f"bench.toml has no [{name}]: the preflight does not check it")
    return section


def _serial_url(port: str) -> str | None:
    """The local path of a pyserial port, None for a URL (rfc2217://, socket://)."""
    return None if "://" in port else port


# -- the terminal --------------------------------------------------------------------------------
def reader_unit(config: BenchConfig) -> Check:
    """A card reader that is itself the unit: on its interface within ``READER_WAIT_S``, and who it
    says it is (its USB descriptor or its chip's firmware). Silent: a warning (the suite powers it
    up and looks again); its USB backend unreachable: the bench's failure."""
    from posbench.setup.devices import open_unit
    unit = open_unit(config)
    where = " ".join(filter(None, (config.usb.backend if config.usb else "", config.nfc.path if config.nfc else "")))
    try:
        unit.wait_ready(READER_WAIT_S)
        who = unit.identify()
    except PortUnavailable as exc:
        return Check("unit", where, FAIL, exc.detail or str(exc), _usb_hint(where, "", exc.detail))
    except UnitError as exc:
        return Check("unit", where, WARN, f"{exc.detail or exc}",
                     "the reader may be unpowered: the suite switches it on and looks again; if it never "
                     "answers, check its cable and its hub port")
    finally:
        unit.close()
    return Check("unit", where, OK, f"{who.model}, serial {who.serial or 'none'}, firmware {who.firmware}")


def terminal(config: BenchConfig) -> Check:
    """The unit on its ECR link, through its protocol's check (``posbench.drivers.ecr.<protocol>.check``)."""
    section = _described(config.terminal, "terminal")
    where = section.port or section.address or ""  # TerminalSection requires one of them
    path = _serial_url(section.port) if section.port else None
    if path and local_node(config, "terminal.port", path) is None:
        return port_problem("terminal", path, "")
    try:
        said = _answer_while_booting(config)
    except PortUnavailable as exc:
        if path:
            return port_problem("terminal", path, exc.detail)
        return Check("terminal", where, FAIL, exc.detail, "is the terminal server on and this its address?")
    except UnitError as exc:
        tcp = section.address is not None
        return Check("terminal", where, WARN, f"{'no answer at' if tcp else 'port open; the unit did not answer on'} "
                     f"{where}: {exc.detail or exc}",
                     "the unit may be off or booting: the suite waits for it (and power cycles it if the bench "
                     "can); if it never answers, check " + ("its network cable and ECR port" if tcp else
                                                            "the baud rate (`posbench discover --probe`)"))
    return Check("terminal", where, OK, said)


def _answer_while_booting(config: BenchConfig) -> str:
    """The protocol's check, asked again for up to ``BOOT_WAIT_S`` while the unit stays silent
    (one just powered on is still booting; the other devices are checked meanwhile)."""
    section = registry.section_of(_described(config.terminal, "terminal"))
    check = registry.layer(section.protocol, "check")
    give_up = time.monotonic() + min(section.boot_timeout, BOOT_WAIT_S)
    while True:
        try:
            return cast(str, check.answer(section, config.unit.model, PROBE_S))
        except PortUnavailable:
            raise
        except UnitError:
            if time.monotonic() + PROBE_S > give_up:
                raise
            time.sleep(0.3)


# -- power ---------------------------------------------------------------------------------------
def power(config: BenchConfig, restore: bool = True) -> Check:
    """The bench's power device identified; a supply's setpoint checked against the profile and,
    with ``restore`` (a triage's preflight, not ``posbench check``), put back where it was left."""
    section = _described(config.power, "power")
    if section.driver == "manual":
        return Check("power", "manual", OK, "the technician switches the unit's power when asked")
    if section.driver == "usb-hub":
        return _hub(config)
    port = section.port
    assert port is not None  # PowerSection: the korad and lcus-relay drivers need a port
    path = _serial_url(port)
    device = "supply" if section.driver == "korad" else "relay"
    if path and local_node(config, "power.port", path) is None:
        return port_problem(device, path, "")
    from posbench.drivers.power import KoradSupply, LcusRelay
    driver = KoradSupply(port, section.channel) if section.driver == "korad" else LcusRelay(port, section.channel)
    try:
        driver.open()
        if isinstance(driver, LcusRelay):  # the board never answers: an open port is all there is
            return Check(device, port, OK, f"LCUS relay port open (channel {section.channel})")
        ident = driver.identify()
    except PortUnavailable as exc:
        driver.close()
        return port_problem(device, path, exc.detail) if path else Check(device, port, FAIL, exc.detail)
    except BenchError as exc:
        driver.close()
        return Check(device, port, FAIL, exc.detail or str(exc),
                     "is the supply switched on and this its port? (a Korad answers *IDN? at 9600 baud)")
    except BaseException:
        driver.close()
        raise
    name = f"{ident.maker} {ident.model or ''} {ident.version or ''}".strip()
    try:
        return _supply_setpoint(config, driver, port, name, restore)
    finally:
        driver.close()


def supply_nominal(config: BenchConfig):
    """What the bench supply is to be set to (``posbench.drivers.power.Setpoint``): the profile's
    ``[power] nominal_v`` and ``current_limit_a``, output on; None when the profile has no [power]."""
    from posbench.drivers.power import Setpoint
    from posbench.setup.profile import profile_for_bench
    described = profile_for_bench(config)
    spec = described.power if described else None
    return Setpoint(spec.nominal_v, spec.current_limit_a, True) if spec else None


def _supply_setpoint(config: BenchConfig, driver, port: str, name: str, restore: bool = True) -> Check:
    """The supply's setpoint and output checked against the profile's nominal and put back where a
    run left them elsewhere (one killed mid-brownout leaves it at the brownout's volts: nothing of
    that run could restore it), saying so. Without ``restore`` it is only said."""
    nominal = supply_nominal(config)
    try:
        now = driver.setpoint()
        if nominal is None:
            return Check("supply", port, OK, f"{name}; set to {now.describe()} (the profile has no [power] "
                         "to check it against)")
        changed = driver.restore(nominal) if restore else _differs(now, nominal)
    except BenchError as exc:
        by_hand = nominal.describe() if nominal else "the unit's nominal volts and current limit"
        return Check("supply", port, FAIL, f"{name}; its setpoint could not be checked or restored: "
                     f"{exc.detail or exc}", f"set it by hand to {by_hand}")
    if not changed:
        return Check("supply", port, OK, f"{name}; at the profile's {nominal.volts:g} V, "
                     f"{nominal.amps:g} A limit, output on")
    left = []
    if abs(now.volts - nominal.volts) > 0.005:
        left.append(f"{now.volts:.2f} V (profile nominal {nominal.volts:g} V)")
    if abs(now.amps - nominal.amps) > 0.0005:
        left.append(f"a {now.amps:.3f} A limit (profile {nominal.amps:g} A)")
    if now.output != nominal.output:
        left.append(f"output {'on' if now.output else 'off'}")
    if not restore:
        return Check("supply", port, WARN, f"supply is at {', '.join(left)} ({name}); left as it is",
                     f"the triage's preflight puts it back to {nominal.describe()}, or set it by hand")
    return Check("supply", port, WARN, f"supply was left at {', '.join(left)}: restored ({name})",
                 "an earlier run was stopped before it could put the supply back (killed, or the bench "
                 "host lost power); it is back at the profile's nominal now")


def _differs(now, nominal) -> bool:
    """Whether a supply's setpoint (``posbench.drivers.power.Setpoint``) is not ``nominal``."""
    return (abs(now.volts - nominal.volts) > 0.005 or abs(now.amps - nominal.amps) > 0.0005
            or now.output != nominal.output)


def _hub(config: BenchConfig) -> Check:
    from posbench.setup.devices import open_usb_hub
    section, spec = _described(config.power, "power"), config.usb.backend if config.usb else "libusb1"
    where = f"hub {section.port or '(first hub)'} port {section.channel}"
    try:
        switch = open_usb_hub(section, spec)
    except BenchError as exc:
        return Check("usb hub", where, FAIL, exc.detail or str(exc), _usb_hint(spec, section.port or ""))
    try:
        if not 1 <= section.channel <= switch.hub.ports:
            raise ConfigError(str(config.source), "power.channel",
                              f"the hub has ports 1..{switch.hub.ports}, not {section.channel}")
        powered = switch.is_on()
    except BenchError as exc:
        return Check("usb hub", where, FAIL, exc.detail or str(exc), _usb_hint(spec, section.port or ""))
    finally:
        switch.close()
    return Check("usb hub", where, OK, f"{switch.hub!r}, port {section.channel} "
                 + ("powered" if powered else "unpowered"))


def _usb_hint(spec: str, ids: str, detail: str = "") -> str:
    if "libusb" in detail and ("not installed" in detail or "cannot find" in detail):
        return "install libusb: `sudo apt-get install libusb-1.0-0`"
    if spec.startswith("usbip://"):
        return f"is usbipd running there? `usbip list -r {spec.removeprefix('usbip://').rsplit(':', 1)[0]}`"
    return (f"`lsusb{' -d ' + ids if ids else ''}` shows what is on the bus; without permission: add yourself "
            f"to the `plugdev` group, {UDEV}")


# -- readers of the unit -------------------------------------------------------------------------
def magstripe(config: BenchConfig, claim: bool = True) -> Check:
    """The USB magstripe reader, opened and named from its descriptor strings. ``claim=False``
    (``posbench check``): found in the bus's device list only, never opened: opening one detaches
    its kernel driver and sets its configuration (a light reset of the reader; over USB/IP,
    importing it resets its endpoints)."""
    from posbench.drivers.usb.backend import find_devices, open_backend
    from posbench.drivers.usb.magstripe import FLAVOUR_BY_PID, MagstripeReader
    usb = _described(config.usb, "usb")
    spec, ids = usb.backend, str(usb.reader) if usb.reader else ""
    where = f"{ids or '0801:*'} on {spec}"
    vid, pid = usb.reader if usb.reader else (0x0801, None)
    try:
        backend = open_backend(spec)
    except BenchError as exc:
        return Check("magstripe reader", where, FAIL, exc.detail or str(exc),
                     _usb_hint(spec, ids or "", exc.detail))
    try:
        deadline = time.monotonic() + READER_WAIT_S
        while not find_devices(backend, vid, pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not claim:
            listed = [d for d in find_devices(backend, vid, pid) if pid is not None or d.idProduct in FLAVOUR_BY_PID]
            if not listed:
                return Check("magstripe reader", where, ABSENT, "not on the bus",
                             f"is the unit's USB cable plugged in (and the unit on)? {_usb_hint(spec, ids or '')}")
            dev = listed[0]
            return Check("magstripe reader", where, OK, f"{dev.idVendor:04x}:{dev.idProduct:04x} "
                         f"({FLAVOUR_BY_PID.get(dev.idProduct, 'reader')}) on bus {dev.bus} address "
                         f"{dev.address}, listed (not opened: read-only check)")
        try:
            reader = MagstripeReader(backend, vid=vid, pid=pid)
        except PortUnavailable as exc:
            if exc.detail == "no such USB device":
                return Check("magstripe reader", where, ABSENT, "not on the bus",
                             f"is the unit's USB cable plugged in (and the unit on)? {_usb_hint(spec, ids or '')}")
            return Check("magstripe reader", where, FAIL, exc.detail, _usb_hint(spec, ids or ""))
        try:
            info = reader.info()
        except (BenchError, UnitError):
            info = {}
        finally:
            reader.close()
        name = " ".join(str(info[k]) for k in ("manufacturer", "product") if info.get(k))
        return Check("magstripe reader", where, OK, f"{name or 'reader'} ({reader.flavour}) on bus "
                     f"{reader.dev.bus} address {reader.dev.address}")
    except BenchError as exc:
        return Check("magstripe reader", where, FAIL, exc.detail or str(exc), _usb_hint(spec, ids or ""))
    finally:
        getattr(backend, "close", lambda: None)()


def nfc(config: BenchConfig) -> Check:
    from posbench.drivers.nfc.reader import NfcReader, ReaderSilent
    path = _described(config.nfc, "nfc").path
    node = path if path.startswith("/") else _nfc_tty(path)
    if node and local_node(config, "nfc.path", node) is None:
        missing = port_problem("nfc reader", node, "")
        return Check("nfc reader", path, ABSENT, missing.said, missing.hint)
    deadline = time.monotonic() + READER_WAIT_S
    while True:
        try:
            reader = NfcReader(path, timeout=PROBE_S + 1.5)
            break
        except ReaderSilent as exc:
            if time.monotonic() >= deadline:
                return Check("nfc reader", path, ABSENT, exc.detail,
                             "the unit powers its reader: is it on? Else the port is not a PN532's")
        except PortUnavailable as exc:
            if node and not os.access(node, os.R_OK | os.W_OK):
                return Check("nfc reader", path, FAIL, f"permission denied on {node}", permission_hint(node))
            if path.startswith("usb"):
                if "suitable libusb" in exc.detail:
                    return Check("nfc reader", path, FAIL, "libusb-1.0 is not installed",
                                 _usb_hint("libusb1", "", "libusb not installed"))
                return Check("nfc reader", path, ABSENT, exc.detail, _pn533_hint())
            return Check("nfc reader", path, FAIL, exc.detail, f"is the reader plugged in? {DISCOVER}")
        time.sleep(0.2)
    try:
        return Check("nfc reader", path, OK, reader.describe())
    finally:
        reader.close()


def _nfc_tty(path: str) -> str | None:
    """The node of an nfcpy ``tty:NAME[:driver]`` path naming one port (/dev/ttyNAME), else None."""
    parts = path.split(":")
    if parts[0] != "tty" or len(parts) < 2 or not parts[1]:
        return None
    name = parts[1]
    if re.fullmatch(r"(S|ACM|AMA|USB)\d+", name):
        return f"/dev/tty{name}"
    return None if re.fullmatch(r"(S|ACM|AMA|USB)|usbserial.*", name) else f"/dev/{name}"


def _pn533_hint() -> str:
    loaded = [m for m in ("pn533_usb", "pn533") if os.path.isdir(f"/sys/module/{m}")]
    why = f"the {' and '.join(loaded)} kernel driver is loaded and holds" if loaded else \
        "is it plugged in (`lsusb -d 072f:2200`)? The pn533 kernel driver may hold"
    return (f"{why} the ACR122U: `sudo modprobe -r pn533_usb pn533` and blacklist them: "
            "`echo 'blacklist pn533_usb' | sudo tee /etc/modprobe.d/posbench-nfc.conf`")


# -- host and actuator ---------------------------------------------------------------------------
def host(config: BenchConfig) -> Check:
    from posbench.drivers.host.reachability import probe_port
    section = _described(config.host, "host")
    address = section.address
    netns = config.network.netns if config.network else None
    try:
        probe = probe_port(*section.host_port, timeout_s=1.0, attempts=1, netns=netns)
    except BenchError as exc:
        return Check("host", address, FAIL, exc.detail or str(exc), "check [host] address")
    if probe.state == "open":
        return Check("host", address, OK, "listening")
    said = f"port {probe.state}: {probe.detail}"
    if config.network is not None:  # the path to the host is judged by the suite (test_host_port)
        return Check("host", address, WARN, said, "is [host] address right and the host simulator running "
                     "there? The suite judges the path to it from the unit's LAN")
    if not section.ours:  # the terminal's own acquirer: nothing of the bench's to start
        return Check("host", address, FAIL, said, "is [host] address the acquirer the terminal's configuration "
                     "names, and is the bench on the terminal's LAN?")
    return Check("host", address, FAIL, said, f"start the host simulator: `posbench host --listen {address} "
                 f"--log {section.log or 'host.jsonl'}`")


def host_log(config: BenchConfig) -> Check:
    path = str(_described(config.host, "host").log)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return Check("host log", path, FAIL, f"no host log at {path}",
                     f"is the host simulator running with `--log {path}`?")
    except OSError as exc:
        return Check("host log", path, FAIL, f"{path}: {exc.strerror}", "can this user read its directory?")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(str(config.source), "host.log", f"{path} is not a regular file (the host "
                          "simulator's JSONL log)")
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        hint = ("the host simulator runs as another user: make its log readable to this one"
                if exc.errno == errno.EACCES else "")
        return Check("host log", path, FAIL, f"{path}: {exc.strerror}", hint)
    return Check("host log", path, OK, f"readable ({st.st_size} bytes)")


def actuator(config: BenchConfig) -> Check:
    section = config.actuator
    if section.kind == "manual":
        from posbench.core.console import no_terminal
        if why := no_terminal():
            return Check("actuator", "manual", FAIL, f"nobody can be prompted to present the cards: {why}",
                         "run the triage from a terminal (ssh -t), or use an actuator that needs no person "
                         "([actuator] kind = \"virtual\" on a virtual bench)")
        return Check("actuator", "manual", OK, "the technician presents the cards when prompted")
    address = section.address
    assert address is not None  # a virtual actuator always has one (posbench.setup.config)
    try:
        socket.create_connection(split_host_port(address), timeout=1.0).close()
    except OSError as exc:
        return Check("actuator", address, FAIL, f"cannot connect: {exc.strerror or exc}",
                     "is the virtual bench (`posbench sim`) that wrote this file still running?")
    who = "simulated technician" if section.technician else "card robot"
    return Check("actuator", address, OK, f"the virtual bench's control port answers (its {who} presents the cards)")
