"""Terminal output of the posbench command."""
from __future__ import annotations

import os
import sys
from typing import TextIO

from rich.console import Console

PIPE_WIDTH = 200
"""Columns of output that is not a terminal (a pipe, a file, CI): lines are never wrapped there
(soft wrap); tables get this much room. ``COLUMNS`` overrides it."""


def make_console(stderr: bool = False, file: TextIO | None = None) -> Console:
    """The console every posbench command prints on: on a terminal as wide as the terminal; into
    a pipe or file line by line, never wrapped at 80 columns."""
    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError, OSError):
        tty = False
    if tty:
        return Console(file=file, stderr=stderr, highlight=False)
    width = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else PIPE_WIDTH
    return Console(file=file, stderr=stderr, highlight=False, soft_wrap=True, width=width)


def say(console: Console, text: object) -> None:
    """Print, but never let a closed stdout (``posbench triage | head``, a terminal window closed
    mid-run: EIO) stop a run."""
    if console.quiet:
        return
    try:
        console.print(text)
    except (OSError, SystemExit):  # rich turns a broken pipe into SystemExit
        console.quiet = True


def no_terminal() -> str | None:
    """Why nobody can be prompted from here (None: a technician can): ``prompt`` asks on the
    controlling terminal, and a run whose input is not a terminal (a CI job, ``ssh`` without
    ``-t``, ``</dev/null``) has nobody at it to answer."""
    try:
        tty = sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError, OSError):
        tty = False
    if not tty:
        return "the input is not a terminal (a CI job, ssh without -t, input from a file or /dev/null)"
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError as exc:
        return f"there is no controlling terminal (/dev/tty: {exc.strerror or exc})"
    return None


def prompt(text: str, timeout: float) -> str | None:
    """Ask the technician on the controlling terminal; None when nobody answered in ``timeout`` s.

    Reads ``/dev/tty`` so pytest's output capture cannot swallow the prompt; without a terminal
    (CI, a pipe) there is nobody to ask and the answer is None at once.
    """
    import os
    import select
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    try:
        os.write(fd, f"\n>>> {text}: ".encode())
        ready, _, _ = select.select([fd], [], [], max(0.0, timeout))
        if not ready:
            os.write(fd, b"(no answer)\n")
            return None
        return os.read(fd, 1024).decode(errors="replace").strip()
    finally:
        os.close(fd)


def ask_technician(text: str, timeout: float) -> str | None:
    """``prompt`` for a step that cannot go on without the answer (a manual power switch): None
    only when the technician was asked and did not answer in ``timeout`` s; ``NoTerminal`` (a
    bench error) when there is no terminal to ask on."""
    import os
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        from posbench.core.errors import NoTerminal
        raise NoTerminal(text) from None
    return prompt(text, timeout)


def announce(text: str) -> None:
    """Tell the technician something on the controlling terminal (no answer expected)."""
    import os
    try:
        fd = os.open("/dev/tty", os.O_WRONLY | os.O_NOCTTY)
    except OSError:
        return
    try:
        os.write(fd, f"\n>>> {text}\n".encode())
    finally:
        os.close(fd)
