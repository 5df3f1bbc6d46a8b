"""What ``posbench triage`` was asked, as one object, and the option mistakes it refuses (exit 3)
before anything is written or started."""
from __future__ import annotations

from posbench.drivers import registry

from dataclasses import dataclass, replace
from pathlib import Path

from posbench.cli.common import UsageFailure
from posbench.cli.shape import fault_options, sim_shape, technician_fits
from posbench.sim import ecr
from posbench.core.errors import ConfigError

Room = tuple[str, dict[str, str] | None]
"""A bench-room triage: the coordinator's address and the tags to reserve by (None: a named place)."""


@dataclass(frozen=True)
class TriageRequest:
    """The options of ``posbench triage``, one field each, named as click names them."""

    bench_path: Path | None = None
    virtual: bool = False
    fault: tuple[str, ...] = ()
    seed: int | None = None
    protocol: str | None = None
    sim_profile: str | None = None
    place: str | None = None
    reserve: str | None = None
    coordinator: str | None = None
    wait_s: float = 600.0
    """How long ``--reserve`` waits for a free place (s)."""
    parallel: int | None = None
    technician_s: float | None = None
    """The simulated technician's slowest presentation (s)."""
    unit: str | None = None
    json_path: Path | None = None
    html_path: Path | None = None
    junit_path: Path | None = None
    store_url: str | None = None
    soak: int | None = None
    log_path: Path | None = None
    verbose: bool = False

    @property
    def in_room(self) -> bool:
        """A bench-room triage: the bench is a labgrid place's (``--place`` / ``--reserve``)."""
        return bool(self.place or self.reserve)

    @property
    def on_virtual_bench(self) -> bool:
        """Neither a bench file nor a place: a virtual bench started for this triage."""
        return not self.bench_path and not self.in_room


@dataclass(frozen=True)
class CheckedRequest:
    """A request whose options go together: ``request.protocol`` resolved for a virtual bench,
    ``room`` for a bench-room triage (else None), ``faults`` parsed (id -> severity in (0, 1])."""

    request: TriageRequest
    room: Room | None
    faults: dict[str, float]


def check_usage(req: TriageRequest) -> CheckedRequest:
    """``UsageFailure`` (exit 3) for options that do not go together, in the order a technician
    reads them; nothing is written or started before."""
    if req.sim_profile and (req.bench_path or req.place or req.reserve):
        raise UsageFailure("--profile shapes the virtual bench only (drop it: a bench file's [unit] profile, "
                           "or the place's, says what the unit is)")
    room = room_request(req)
    if req.parallel:  # room_request refused whatever else would be refused below
        return CheckedRequest(req, room, {})
    if req.bench_path and req.virtual:
        raise UsageFailure("--bench and --virtual exclude each other")
    if req.bench_path and (req.fault or req.seed is not None or req.protocol or req.technician_s is not None):
        raise UsageFailure("--fault, --seed, --protocol and --technician-s apply to the virtual bench only (drop "
                           "--bench; bench.toml's [terminal] protocol says what a real unit speaks)")
    faults = fault_options(req.fault)
    if not req.bench_path and room is None:
        req = replace(req, protocol=sim_shape(req.sim_profile, req.protocol))
        faults = fault_options(req.fault, req.sim_profile)  # a reader's causes only, for a reader profile
        if req.technician_s is not None:
            technician_fits(req.technician_s, req.sim_profile, req.protocol or "")
    protocol, unit = req.protocol, req.unit
    if unit and not req.bench_path and protocol in registry.sim_names() \
            and (problem := ecr.serial_problem(registry.virtual(protocol), unit)):
        raise UsageFailure(f"--unit {unit}: {problem}")
    return CheckedRequest(req, room, faults)


def room_request(req: TriageRequest) -> Room | None:
    """The coordinator and the tags of a bench-room triage (``--place`` / ``--reserve``), None
    for another bench; ``UsageFailure`` for options that do not go together."""
    bench_path, virtual, fault, seed, protocol = req.bench_path, req.virtual, req.fault, req.seed, req.protocol
    place, reserve, coordinator, parallel = req.place, req.reserve, req.coordinator, req.parallel
    outputs = (req.json_path, req.html_path, req.junit_path, req.log_path)
    if not (place or reserve):
        if parallel:
            raise UsageFailure("--parallel takes places by --reserve TAGS")
        return None
    if place and reserve:
        raise UsageFailure("--place and --reserve exclude each other")
    if bench_path or virtual or fault or seed is not None or protocol:
        raise UsageFailure("--place / --reserve take the bench from the place: drop --bench, --virtual, --fault, "
                           "--seed and --protocol")
    if parallel and not reserve:
        raise UsageFailure("--parallel takes places by --reserve TAGS (one place per unit)")
    if parallel and any(outputs):
        raise UsageFailure("--parallel: each run names its reports by its unit's serial; drop --json, --html, "
                           "--junit and --log")
    if not coordinator:
        raise UsageFailure("--place / --reserve need the labgrid coordinator: --coordinator HOST[:PORT] "
                           "or LG_COORDINATOR")
    try:
        import labgrid  # noqa: F401 - the optional extra
    except ImportError:
        raise UsageFailure("--place / --reserve need labgrid: pip install 'posbench[labgrid]'") from None
    from posbench.room.client import coordinator_address, parse_tags
    try:
        return coordinator_address(coordinator), parse_tags(reserve) if reserve else None
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None
