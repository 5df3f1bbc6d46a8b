"""Preflight: every device of a bench description checked at once, before any HIL test runs.

``check_bench`` raises ``ConfigError`` for a mistake in the description (exit 3) and returns a
``Check`` per device (``posbench.setup.device_checks``), all run in parallel under one deadline.
``preflight`` does that under the bench lock, prints a line per device and raises
``PreflightFailed`` (a bench error, exit 2) naming every device that failed.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from datetime import datetime
from pathlib import Path

from posbench.setup import device_checks as dc
from posbench.setup.config import BenchConfig, load_bench
from posbench.setup.device_checks import ABSENT, FAIL, OK, WARN, Check
from posbench.core.errors import BenchError, ConfigError

DEADLINE_S = 12.0
"""Seconds the whole preflight may take; a check still running then has failed."""


class PreflightFailed(BenchError):
    """Devices of the bench are absent or unusable; ``checks`` says which and what to check."""

    def __init__(self, checks: list[Check], config: BenchConfig | None = None):
        self.checks, self.config = checks, config
        bad = [c for c in checks if c.state == FAIL]
        super().__init__("bench", "preflight", f"{len(bad)} of {len(checks)} device(s) not ready "
                         f"({', '.join(c.device for c in bad)}); no test was run")


def check_store_url(url: str) -> None:
    """``ValueError`` saying what is expected unless ``url`` names a database the store supports."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError as exc:
        raise ValueError(f"not a database URL ({exc})") from None
    if backend not in ("sqlite", "postgresql", "postgres"):
        raise ValueError(f"{backend} is not a supported database")


def config_mistakes(config: BenchConfig) -> None:
    """What is wrong in the description itself, found without touching a device."""
    from posbench.setup.profile import profile_for_bench
    try:
        profile_for_bench(config)
    except ConfigError as exc:
        if exc.key == "unit.model":  # the bench file's key, not the profile it could not find
            raise ConfigError(str(config.source), "unit.model", exc.expected) from None
        raise


def device_checks(config: BenchConfig, read_only: bool = False) -> dict[str, Callable[[BenchConfig], Check]]:
    """The check of each device the description names, by device. ``read_only`` (``posbench
    check``): checks that would change a device's state (opening a USB reader resets it) only
    look for it, and a supply left off its profile's setpoint is said, not restored. Every other
    check only identifies its device: the terminal by a status or
    identity question (ZVT status enquiry 05 01, the agent's identify, Concert's ENQ, Caisse-AP's
    refused probe), the supply by *IDN?, a hub by reading its port's power, the NFC reader by its
    firmware version; no sale, no power switching, no setpoint change."""
    if config.terminal is None:  # the unit is a card reader: its own check is its reader's
        found: dict[str, Callable[[BenchConfig], Check]] = {"unit": dc.reader_unit}
    else:
        found = {"terminal": dc.terminal}
    if config.power is not None:
        found["power"] = partial(dc.power, restore=False) if read_only else dc.power
    if config.usb is not None and config.terminal is not None:
        found["magstripe reader"] = partial(dc.magstripe, claim=False) if read_only else dc.magstripe
    if config.nfc is not None and config.terminal is not None:
        found["nfc reader"] = dc.nfc
    if config.host is not None:
        found["host"] = dc.host
        if config.host.log is not None:
            found["host log"] = dc.host_log
    found["actuator"] = dc.actuator
    return found


def check_bench(config: BenchConfig, deadline_s: float = DEADLINE_S, read_only: bool = False) -> list[Check]:
    """Every device's check, run at once; ``ConfigError`` for the first config mistake found.
    ``read_only``: see ``device_checks``."""
    config_mistakes(config)
    todo = device_checks(config, read_only)
    results: dict[str, Check | ConfigError] = {}

    def run(name: str, check: Callable[[BenchConfig], Check]) -> None:
        try:
            results[name] = check(config)
        except ConfigError as exc:
            results[name] = exc
        except Exception as exc:  # noqa: BLE001 - a driver failing in an unforeseen way: that device failed
            results[name] = Check(name, "", FAIL, f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=item, name=f"preflight-{item[0]}", daemon=True)
               for item in todo.items()]
    deadline = time.monotonic() + deadline_s
    for thread in threads:
        thread.start()
    for thread in threads:  # daemon threads: one stuck in a driver is left behind, never waited for
        thread.join(max(0.0, deadline - time.monotonic()))
    checks: list[Check] = []
    for name in todo:
        if isinstance(got := results.get(name), ConfigError):
            raise got
        checks.append(got or Check(name, "", FAIL, f"no answer within {deadline_s:g} s"))
    return [_judge_absent(c, checks[0]) for c in checks]


def _judge_absent(check: Check, terminal: Check) -> Check:
    """A reader of the unit that is not there: the bench's fault unless the unit may just be off."""
    if check.state != ABSENT:
        return check
    if terminal.state == WARN:  # the unit does not answer yet: the suite powers it up and looks again
        return Check(check.device, check.where, WARN, f"{check.said} while the unit does not answer", check.hint)
    return Check(check.device, check.where, FAIL, check.said, check.hint)


def line(check: Check) -> str:
    """One line of the preflight for the technician (rich markup escaped)."""
    from rich.markup import escape
    mark = {OK: "[green]ok  [/]", WARN: "[yellow]warn[/]", FAIL: "[bold red]FAIL[/]"}[check.state]
    text = f"  {mark}  {check.device:<16} {escape(check.where)}: {escape(check.said)}"
    return text + (f"\n        → {escape(check.hint)}" if check.hint and check.state != OK else "")


def look(bench_file: Path, say: Callable[[str], None], read_only: bool = False):
    """Lock the bench described in ``bench_file``, check it, print a line per device; returns the
    lock (acquired) and the checks. ``ConfigError`` for a mistake in the file, ``PreflightFailed``
    when a device failed (the lock released). ``read_only``: see ``device_checks``."""
    from posbench.setup.lock import BenchLock, bench_resources
    config = load_bench(bench_file)
    start = time.monotonic()
    lock = BenchLock(bench_resources(config)).acquire()
    try:
        checks = check_bench(config, read_only=read_only)
        say(f"preflight: {len(checks)} devices checked in {time.monotonic() - start:.1f} s")
        for check in checks:
            say(line(check))
        if any(c.state == FAIL for c in checks):
            raise PreflightFailed(checks, config)
    except BaseException:
        lock.release()
        raise
    return lock, checks


def preflight(bench_file: Path, say: Callable[[str], None]):
    """Lock the bench described in ``bench_file`` for this run, check it, print a line per device;
    returns the lock (held until released or the process ends: the HIL session shares it).
    ``ConfigError`` for a mistake in the file, ``PreflightFailed`` when a device failed."""
    lock, _ = look(bench_file, say)
    return lock.hold_for_run()
