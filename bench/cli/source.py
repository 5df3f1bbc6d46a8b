"""The bench a triage runs on, chosen in one place: the bench file as given, a labgrid place of
a bench room, or a virtual bench started for the run. Each is a ``BenchSource``: ``start()``
returns the bench description (bench.toml) the HIL suite reads, ``alive()`` says whether what
serves it still runs, ``stop()`` gives back whatever ``start()`` took.

It sits in the CLI's package: a place needs ``posbench.room``, which is above ``posbench.run``
(tests/unit/test_layers.py)."""
from __future__ import annotations

from posbench.drivers import registry

import random
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rich.console import Console
from rich.markup import escape

from posbench.cli.request import CheckedRequest
from posbench.core.console import say

if TYPE_CHECKING:
    from posbench.sim.launcher import VirtualBench


class BenchSource(Protocol):
    """Where a triage's bench comes from."""

    def start(self) -> Path:
        """Bring the bench up (acquire the place, start the virtual bench); its bench.toml."""

    def alive(self) -> bool:
        """False once what serves the bench has died during the run (only a virtual bench's
        process can: a file or a place has no process of ours behind it)."""

    def stop(self) -> None:
        """Give back what ``start()`` took; safe before ``start()`` and more than once."""


class BenchFile:
    """A real bench, described by the bench file the technician named (``--bench``)."""

    def __init__(self, path: Path):
        self.path = path

    def start(self) -> Path:
        return self.path

    def alive(self) -> bool:
        return True

    def stop(self) -> None:
        return None


class Place:
    """A labgrid place of a bench room (``--place`` / ``--reserve``): acquired by ``start()``,
    released by ``stop()`` (``posbench.room.place_bench.PlaceBench``)."""

    def __init__(self, coordinator: str, place: str | None, tags: dict[str, str] | None, wait_s: float,
                 console: Console):
        from posbench.room.place_bench import PlaceBench
        self.place_bench = PlaceBench(coordinator, place, tags, wait_s, lambda text: say(console, escape(text)))

    def start(self) -> Path:
        return self.place_bench.start()

    def alive(self) -> bool:
        return True

    def stop(self) -> None:
        self.place_bench.stop()


class Virtual:
    """A virtual bench in its own process (``posbench.sim.launcher.VirtualBench``), shaped and
    seeded as asked; a seed not given is chosen at ``start()`` and printed, so the run can be repeated."""

    def __init__(self, checked: CheckedRequest, console: Console):
        self.request, self.faults, self.console = checked.request, checked.faults, console
        self.vbench: VirtualBench | None = None

    def start(self) -> Path:
        from posbench.sim.launcher import VirtualBench
        req = self.request
        fault, sim_profile, protocol = req.fault, req.sim_profile, req.protocol
        seed = random.randrange(2**31) if req.seed is None else req.seed  # printed: a run can be repeated
        # --unit on the virtual bench: the virtual unit reports that serial (a repair can be
        # rehearsed: a fault, then none, same serial, and `history` shows before / after)
        self.vbench = vbench = VirtualBench(self.faults, seed, protocol=protocol, serial=req.unit,
                                            profile=sim_profile, technician_s=req.technician_s)
        say(self.console, "starting the virtual bench"
                          + (f" shaped like {sim_profile}" if sim_profile else "")
                          + (f" with faults {', '.join(fault)}" if fault else " (healthy unit)")
                          + f", seed {seed}" + (f", protocol {protocol}" if protocol and protocol != registry.DEFAULT else ""))
        return vbench.start()

    def alive(self) -> bool:
        return self.vbench is None or self.vbench.alive()

    def stop(self) -> None:
        if self.vbench is not None:
            self.vbench.stop()


def bench_source(checked: CheckedRequest, console: Console) -> BenchSource:
    """The one place a triage's bench is chosen: ``--bench``'s file, the room's place, else a
    virtual bench."""
    req = checked.request
    if req.bench_path:
        return BenchFile(req.bench_path)
    if checked.room is not None:
        return Place(checked.room[0], req.place, checked.room[1], req.wait_s, console)
    return Virtual(checked, console)
