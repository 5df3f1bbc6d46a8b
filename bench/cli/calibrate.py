"""``posbench calibrate``: the fault matrix on the virtual bench, scored."""
from __future__ import annotations

from posbench.drivers import registry

import os
import sys
from pathlib import Path

import click

from posbench.cli.common import Command, UsageFailure
from posbench.cli.shape import sim_shape
from posbench.core.console import make_console, say
from posbench.sim import PROTOCOLS


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageFailure(f"{what}: expected numbers separated by commas, got {text!r}") from None
    if not values or not all(0 < v <= 1 for v in values):
        raise UsageFailure(f"{what}: every value must be in (0, 1]")
    return values


@click.command(cls=Command)
@click.option("--severities", default="0.3,0.6,1.0", show_default=True, help="severities of each single fault")
@click.option("--seeds", default=2, show_default=True, type=click.IntRange(1, 100), help="seeds per fault and severity")
@click.option("--healthy", default=10, show_default=True, type=click.IntRange(0, 1000), help="healthy units")
@click.option("--pairs/--no-pairs", default=True, show_default=True, help="also pairs of faults at once")
@click.option("--cause", "causes", multiple=True, metavar="ID", help="only these causes (default: every injectable one)")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(1, 64), help="triages run at once")
@click.option("--out", "out_path", default="docs/diagnosis.md", show_default=True, type=click.Path(path_type=Path))
@click.option("--first-seed", default=9000, show_default=True, type=int, help="seeds are first-seed, first-seed+1, ...")
@click.option("--protocol", "protocols", multiple=True, type=click.Choice(PROTOCOLS),
              help="ECR protocol of the virtual unit, repeatable: a section each (default: agent; with "
                   "--profile, every protocol the profile speaks)")
@click.option("--profile", "sim_profile", metavar="NAME",
              help="calibrate the virtual bench shaped like this DUT profile (e.g. zvt-generic: a real terminal, "
                   "its readers inside it, its own acquirer) [default: pt100]")
def calibrate(severities, seeds, healthy, pairs, causes, jobs, out_path, first_seed, protocols, sim_profile) -> None:
    """Run the fault matrix on the virtual bench and write the diagnosis's scores: a section per
    shape (protocol, and profile if given) into --out, replacing those sections and keeping the others."""
    import shlex
    import time

    from posbench.run import calibrate as cal
    from posbench.sim.unit.faults import INJECTABLE, injectable
    console = make_console()
    shaped: list[str | None] = list(protocols)
    possible: tuple[str, ...] = INJECTABLE
    if sim_profile:
        from posbench.sim.bench import sim_profile as load_shape
        spoken = [sim_shape(sim_profile, p) for p in dict.fromkeys(protocols or (None,))]  # usage errors
        unit = load_shape(sim_profile)
        possible = injectable(unit)  # a reader's causes only, for a reader profile
        if unit.is_reader:
            shaped = [None]  # it speaks no ECR protocol: one section, the profile's
        else:
            shaped = list(spoken) if protocols else list(unit.protocols)
    chosen = list(causes) or list(possible)
    if unknown := [c for c in chosen if c not in possible]:
        raise UsageFailure(f"--cause: cannot inject {', '.join(unknown)}; injectable: {', '.join(possible)}")
    seed_list = [first_seed + i for i in range(seeds)]
    healthy_seeds = [first_seed + 500 + i for i in range(healthy)]
    protocols = list(dict.fromkeys(shaped)) or [registry.DEFAULT]
    cases = [case for protocol in protocols for case in cal.matrix(
        chosen, _floats(severities, "--severities"), seed_list, healthy_seeds,
        cal.default_pairs(chosen) if pairs else [], protocol, sim_profile)]
    shape = f"{sim_profile} over " if sim_profile and protocols != [None] else sim_profile or ""
    say(console, f"calibrating: {len(cases)} triage runs ({shape}{', '.join(p for p in protocols if p)}), "
                 f"{jobs} at a time")
    try:  # before the runs: a page that cannot be read must not cost a calibration
        existing: str | None = out_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageFailure(f"--out {out_path}: cannot be read to keep its other sections: {exc}") from None
    start = time.monotonic()

    def progress(o, done, total):
        say(console, f"  [{done}/{total}] {o.case.protocol or 'reader':<7} {o.case.label:<38} seed {o.case.seed}: "
                     f"{o.verdict:<12} " + ", ".join(f"{c} {v:.2f}" for c, v in o.causes[:3]))

    outcomes = cal.run_matrix(cases, jobs, progress)
    command = ("posbench calibrate " + shlex.join(sys.argv[2:]) if len(sys.argv) > 2 else "posbench calibrate").strip()
    wall_s = time.monotonic() - start
    sections = []
    for protocol in protocols:
        mine = [o for o in outcomes if o.case.protocol == protocol]
        scores = cal.score(mine)
        sections.append(cal.markdown(scores, mine, protocol, sim_profile,
                                     f"Produced by `{command}` ({len(outcomes)} triage runs, "
                                     f"{wall_s / 60:.1f} min wall time)."))
        say(console, f"{shape}{protocol or ''}: top-1 accuracy {scores.top1:.3f} over {scores.top1_cases} single faults, "
                     f"false-fault rate {scores.false_fault_rate:.3f} over {scores.healthy_cases} healthy units")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    text = cal.page(sections, outcomes, command, wall_s) if existing is None else cal.merge(existing, sections)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out_path)  # the page is never left half written
    say(console, f"written to {out_path}" + ("" if existing is None else " (its other sections kept)"))
