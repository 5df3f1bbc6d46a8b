"""``posbench history SERIAL`` and ``posbench runs``: stored runs as tables (a unit's runs, newest
first, and what changed in its last two); a verdict's causes found on the unit before.

The "before / after" table compares the last two complete runs (typically: before and after a
repair) and lists the measurements whose pass/fail changed or whose value moved by more than
``REL_TOL``. Output is a rich table; when stdout is not a terminal it is plain ASCII (no colour
codes, no box-drawing characters) so it survives ``| less``, e-mail and log files.
"""
from __future__ import annotations

from datetime import datetime

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from posbench.core.console import say
from posbench.diagnosis.verdict import SeenBefore, Verdict
from posbench.store import MeasurementChange, RunSummary, Store

REL_TOL = 0.05
"""Relative change below which a number that still passes/fails the same way is "unchanged"."""
ID_CHARS = 8
"""How many characters of a run id are shown (any unambiguous prefix works as a run id)."""

_VERDICT_STYLE = {"pass": "green", "fault": "red", "inconclusive": "dark_orange", "bench_error": "magenta"}


def when(moment: datetime | None) -> str:
    """A stored UTC time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def short(run_id: str) -> str:
    return run_id[:ID_CHARS]


def render_history(store: Store, serial: str, console: Console) -> list[RunSummary]:
    """Print the unit's runs and the before/after diff of its last two complete runs.

    Returns the runs (newest first); none stored prints a line saying so.
    """
    runs = store.runs_for_unit(serial)
    if not runs:  # the caller says so, once
        return runs
    say(console, Text(f"unit {serial}: {len(runs)} run(s), newest first", style="bold"))
    say(console, runs_table(runs, plain=not console.is_terminal))
    complete = [r for r in runs if r.status == "complete"]
    if len(complete) < 2:
        say(console, Text(f"\n{len(complete)} complete run(s): nothing to compare yet "
                          "(the before / after table needs two)."))
        return runs
    after, before = complete[0], complete[1]
    changes = store.changed_measurements(before.run_id, after.run_id, rel_tol=REL_TOL)
    say(console, Text(f"\nbefore / after: {short(before.run_id)} ({when(before.started)}, {before.verdict}) -> "
                      f"{short(after.run_id)} ({when(after.started)}, {after.verdict})", style="bold"))
    say(console, changes_table(changes, plain=not console.is_terminal))
    return runs


def render_runs(store: Store, console: Console, limit: int, bench: str | None = None) -> list[RunSummary]:
    """``posbench runs``: the newest runs of every bench (a bench room's: one row per triage, its
    place as the bench), newest first. Returns them; none stored prints nothing."""
    runs = store.recent_runs(limit, bench)
    if runs:
        where = f"bench or place {bench}" if bench else "every bench"
        say(console, Text(f"{len(runs)} run(s) of {where} in {store.url}, newest first", style="bold"))
        say(console, runs_table(runs, plain=not console.is_terminal, with_unit=True))
    return runs


def runs_table(runs: list[RunSummary], plain: bool = False, with_unit: bool = False) -> Table:
    """One row per run: id prefix, start, (the unit,) verdict (or INCOMPLETE and why), causes,
    bench (a place's name for a bench room's run) / firmware."""
    table = Table(box=box.ASCII if plain else box.ROUNDED, highlight=False)
    table.add_column("run", no_wrap=True)
    table.add_column("started", no_wrap=True)
    if with_unit:
        table.add_column("unit", no_wrap=True)
    table.add_column("verdict")
    table.add_column("causes (confidence)")
    table.add_column("bench / firmware")
    for run in runs:
        if run.status == "complete":
            verdict = Text(run.verdict or "?", style=_VERDICT_STYLE.get(run.verdict or "", ""))
        else:
            label = "INCOMPLETE" if run.status == "incomplete" else run.status.upper()
            verdict = Text(label, style="bold yellow")
            if run.verdict:
                verdict.append(f" ({run.verdict})")
            if run.reason:
                verdict.append(f"\n{run.reason}", style="dim")
        causes = ", ".join(f"{c.id} {c.confidence:.0%}" for c in run.causes) or "-"
        unit = [Text(f"{run.unit.get('serial') or '?'} ({run.unit.get('model') or '?'})")] if with_unit else []
        table.add_row(short(run.run_id), when(run.started), *unit, verdict, Text(causes),
                      Text(f"{run.bench_name or '?'} / {run.unit.get('firmware') or '?'}"))
    return table


def changes_table(changes: list[MeasurementChange], plain: bool = False) -> Table | Text:
    """The measurements that changed between two runs (see ``Store.changed_measurements``)."""
    if not changes:
        return Text(f"no measurement changed (by more than {REL_TOL:.0%}, or between pass and fail).")
    table = Table(box=box.ASCII if plain else box.ROUNDED, highlight=False)
    table.add_column("measurement")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    table.add_column("limit check")
    for change in changes:
        table.add_row(Text(change.name), Text(_value(change.before, change.passed_before)),
                      Text(_value(change.after, change.passed_after)),
                      _verdict_change(change.passed_before, change.passed_after))
    return table


def _value(value: object, present: bool | None) -> str:
    if present is None:
        return "(not measured)"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _verdict_change(before: bool | None, after: bool | None) -> Text:
    word = {True: "pass", False: "FAIL", None: "-"}
    text = Text(f"{word[before]} -> {word[after]}")
    if before is False and after is True:
        text.stylize("green")
    elif after is False:
        text.stylize("red")
    return text


def repeat_notes(previous: dict[str, list[tuple[str, datetime]]], cause_ids: list[str]) -> list[str]:
    """Lines for a verdict: which of ``cause_ids`` were found on the same unit before.

    ``previous`` is ``Store.previous_causes(serial, exclude_run=this_run)``.
    """
    notes = []
    for cause_id in cause_ids:
        earlier = previous.get(cause_id)
        if earlier:
            runs = ", ".join(f"{short(run_id)} ({when(started)})" for run_id, started in earlier[:3])
            more = f" and {len(earlier) - 3} more" if len(earlier) > 3 else ""
            notes.append(f"{cause_id} was found on this unit before: run {runs}{more}")
    return notes


def annotate_repeats(doc: Verdict, previous: dict[str, list[tuple[str, datetime]]]) -> list[str]:
    """Note in a verdict which causes were found on the same unit before.

    Sets ``seen_before`` (runs with their ISO-8601 start, newest first) on each such cause of
    ``doc`` (in place) and returns the ``repeat_notes`` lines for the terminal.
    """
    for cause in doc.causes:
        earlier = previous.get(cause.id)
        if earlier:
            cause.seen_before = [SeenBefore(run=run_id, started=started.isoformat(timespec="seconds"))
                                 for run_id, started in earlier]
    return repeat_notes(previous, [c.id for c in doc.causes])
