"""Terminal output of the posbench command."""
from __future__ import annotations

from rich.console import Console


def say(console: Console, text: object) -> None:
    """Print, but never let a closed stdout (``posbench triage | head``) stop a run."""
    if console.quiet:
        return
    try:
        console.print(text)
    except (BrokenPipeError, SystemExit):  # rich turns a broken pipe into SystemExit
        console.quiet = True
