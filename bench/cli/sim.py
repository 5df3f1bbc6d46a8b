"""``posbench sim``: the virtual bench in the foreground."""
from __future__ import annotations

from pathlib import Path

import click

from posbench.cli.common import FAULT_HELP, PROFILE_HELP, Command, UsageFailure
from posbench.cli.foreground import in_foreground
from posbench.cli.shape import fault_options, sim_shape, technician_fits
from posbench.core.errors import ConfigError
from posbench.sim import PROTOCOLS


@click.command(cls=Command)
@click.option("--fault", multiple=True, metavar="ID[=SEVERITY]", help=FAULT_HELP.removeprefix("virtual bench: "))
@click.option("--seed", type=int, help="seed for every random choice")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default=None,
              help="the ECR protocol the virtual unit speaks, one of the profile's (default: its first)")
@click.option("--profile", "sim_profile", metavar="NAME", help=PROFILE_HELP.removeprefix("virtual bench: "))
@click.option("--write-bench", "bench_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="write the bench description of the running virtual bench here")
@click.option("--timing", multiple=True, metavar="NAME=SECONDS",
              help="virtual unit step time, e.g. boot_s=5 or host_timeout_s=3 (repeatable)")
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False, path_type=Path),
              help="host simulator rules (TOML [[rule]] tables), applied before the faults' rules")
@click.option("--serial", metavar="SERIAL", help="the serial number the virtual unit reports (default: from the "
                                                 "seed; ZVT keeps its digits)")
@click.option("--announce/--no-announce", default=True, show_default=True,
              help="make the devices findable by `posbench discover --probe` (links in $POSBENCH_DEVICE_DIR, "
                   "see posbench.setup.device_dir)")
@click.option("--technician/--card-robot", default=None,
              help="who presents the cards: a simulated technician (after a human delay, now and then late or "
                   "the wrong way; the default for a real terminal's profile) or a card robot (at once; the "
                   "default for the PT100)")
@click.option("--technician-s", "technician_s", type=float, default=2.5, show_default=True, metavar="SECONDS",
              help="the simulated technician's slowest presentation (delays from a third of it to all of it); "
                   "small values make tests fast")
def sim(fault, seed, protocol, sim_profile, bench_path, timing, rules_path, serial, announce, technician,
        technician_s) -> None:
    """Run the virtual bench in the foreground until SIGINT/SIGTERM."""
    from posbench.sim.bench import DEFAULT_PROFILE, SimBench, sim_profile as load_shape
    from posbench.sim.reader_bench import ReaderBench
    from posbench.sim.ecr.agent import TerminalTiming
    from posbench.drivers.host.rules import RuleSet
    from posbench.sim.technician import Habits
    sim_profile = sim_profile or DEFAULT_PROFILE
    protocol = sim_shape(sim_profile, protocol)
    faults = fault_options(fault, sim_profile)
    if protocol is None and (timing or rules_path):  # a reader profile: no terminal, no host
        raise UsageFailure(f"--timing and --rules shape a terminal and its host; --profile {sim_profile} is a "
                           "card reader (drop them)")
    if technician is None:  # a real terminal's bench has a person presenting cards, not a robot
        technician = sim_profile != DEFAULT_PROFILE
    try:
        habits = Habits(slowest_s=technician_s)
    except ValueError as exc:
        raise UsageFailure(f"--technician-s: {exc}") from None
    if technician:
        technician_fits(technician_s, sim_profile, protocol)
    try:
        steps = TerminalTiming.parse(timing, TerminalTiming.for_profile(load_shape(sim_profile))) \
            if protocol else None
        rules = RuleSet.from_toml(rules_path) if rules_path else None
    except ValueError as exc:
        raise UsageFailure(f"--timing: {exc}") from None
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None
    def started(sim_bench) -> None:
        sim_bench.write_bench(bench_path)
        print(f"virtual bench running (seed {sim_bench.seed}); bench description: {bench_path}", flush=True)
        if protocol is None:
            where = sim_bench.usb.url if sim_bench.usb else sim_bench.nfc.path
            print(f"  reader {sim_bench.profile.model} {sim_bench.serial} on {where}", flush=True)
            return
        term = sim_bench.terminal
        where = ("{}:{}".format(*term.address) if getattr(term, "address", None) else term.port.path)
        print(f"  terminal ({protocol}) {where}  host {sim_bench.host.address[0]}:"
              f"{sim_bench.host.address[1]}"
              + ("" if sim_bench.profile.acquirer == "bench" else " (the unit's own acquirer, not in the bench file)")
              + f"  unit {sim_bench.profile.model} {sim_bench.serial}", flush=True)

    def make() -> SimBench | ReaderBench:
        sim_bench: SimBench | ReaderBench
        if protocol is None:  # a reader profile: the reader is the unit
            sim_bench = ReaderBench(sim_profile, faults, seed, serial=serial, announce=announce)
        else:
            sim_bench = SimBench(faults, seed, serial=serial, timing=steps, host_rules=rules, protocol=protocol,
                                 announce=announce, profile=sim_profile)
        if technician:
            import random
            from posbench.sim.technician import Technician
            sim_bench.technician = Technician(random.Random(sim_bench.seed + 23), habits)
        return sim_bench

    in_foreground(make,
                   started, "the virtual bench", "virtual bench stopped; everything it created is removed")
