"""``posbench discover``: find the bench's devices and describe them in a bench.toml."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.markup import escape

from posbench.cli.common import EXIT_BENCH, Command, UsageFailure
from posbench.core.console import make_console, say
from posbench.core.errors import ConfigError


@click.command(cls=Command)
@click.option("--probe", is_flag=True, help="ask every serial port which protocol it speaks (terminals, "
                                            "supplies, PN532 readers) and every announced TCP endpoint")
@click.option("--port", "ports", multiple=True, metavar="PORT",
              help="also look at this port or URL (a pty, rfc2217://...); repeatable")
@click.option("--address", "addresses", multiple=True, metavar="HOST[:PORT]",
              help="try the TCP terminal protocols at HOST (ZVT on 20007), or all of them at PORT; repeatable")
@click.option("--usb", "usb_backends", multiple=True, metavar="usbip://HOST:PORT",
              help="also enumerate this USB/IP server (usbipd); repeatable")
@click.option("--write", "write_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="write a bench.toml of what was found (needs --probe; never overwrites)")
def discover(probe, ports, addresses, usb_backends, write_path) -> None:
    """Find the bench's devices (serial, TCP, USB, NFC), and with --write describe them in a bench.toml.

    \b
    Exit status 0 also when nothing was found; 3 for a usage mistake (--write to a file that
    exists, a malformed --usb).
    """
    from posbench.discover import readers, report, survey, writer
    from posbench.render.outputs import check_target
    console = make_console()
    if write_path is not None:
        if not probe:
            raise UsageFailure("--write needs --probe: only a port that answered is written as a device")
        if os.path.lexists(write_path):
            raise UsageFailure(f"--write {write_path}: the file exists; discover never overwrites a bench "
                               "description (move it away or name another file)")
        try:
            check_target(write_path, "--write")
        except ConfigError as exc:
            raise UsageFailure(str(exc)) from None
    for spec in usb_backends:
        if not spec.startswith("usbip://"):
            raise UsageFailure(f"--usb {spec}: expected usbip://HOST:PORT (the local bus is always enumerated)")
    found = survey.survey(probe, ports, addresses, usb_backends)
    for line in report.lines(found):
        say(console, escape(line))
    if write_path is None:
        if probe:
            say(console, "(--write FILE describes what was found in a bench.toml)")
        return
    plan = writer.compose(found)
    if plan is None:
        if readers.found_readers(found):
            say(console, escape(f"no terminal answered and no reader profile matches the card readers found: "
                                f"{write_path} not written (no [unit] profile is guessed for a reader). Name its "
                                "profile in a bench.toml by hand (docs/bench-setup.md, \"A card reader as the unit\")."))
            return
        say(console, escape(f"no terminal answered and no card reader was found: {write_path} not written (a "
                            "bench.toml needs its [terminal], or a card reader as the unit). Check the unit is on "
                            "and its ECR cable in, or name its port (--port) or address (--address)."))
        return
    try:
        writer.write(write_path, plan.text)
    except FileExistsError:
        raise UsageFailure(f"--write {write_path}: the file appeared meanwhile; not overwritten") from None
    except ConfigError as exc:  # discover composed something config refuses: discover's own fault
        say(console, f"[bold magenta]BENCH ERROR[/]: the composed bench.toml is not valid: {escape(str(exc))}")
        sys.exit(EXIT_BENCH)
    except OSError as exc:
        say(console, f"[bold magenta]BENCH ERROR[/]: cannot write {escape(str(write_path))}: {escape(str(exc))}")
        sys.exit(EXIT_BENCH)
    say(console, f"wrote {escape(str(write_path))}: " + escape("; ".join(plan.used)))
    if plan.left:
        say(console, escape("not used (comments in the file): " + "; ".join(plan.left)))
    say(console, "lines marked FILL IN are yours to complete; check it with "
                 f"`posbench check --bench {escape(str(write_path))}`")
