"""The virtual bench's options a command shares (``--profile``, ``--protocol``, ``--fault``,
``--technician-s``), checked before anything starts: a mistake is a usage error (exit 3)."""
from __future__ import annotations

from posbench.cli.common import UsageFailure
from posbench.core.errors import ConfigError


def sim_shape(profile: str | None, protocol: str | None) -> str | None:
    """The protocol of a virtual bench shaped like ``profile``: ``protocol`` if the profile speaks
    it, else its first; None for a reader profile (its unit speaks none). A usage error (exit 3)
    for an unknown profile, a protocol it does not speak, any protocol for a reader, or a reader
    the virtual bench cannot build."""
    from posbench.sim.bench import DEFAULT_PROFILE, sim_profile, sim_protocol
    try:
        shape = sim_profile(profile or DEFAULT_PROFILE)
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None  # names --profile
    if shape.is_reader:
        if protocol:
            raise UsageFailure(f"--protocol {protocol}: --profile {profile} is a card reader that is itself the "
                               "unit; it speaks no ECR protocol (drop --protocol)")
        from posbench.sim.reader_bench import buildable
        try:
            buildable(shape)
        except ValueError as exc:
            raise UsageFailure(f"--profile {profile}: {exc}") from None
        return None
    try:
        return sim_protocol(shape, protocol)
    except ValueError as exc:
        raise UsageFailure(f"--protocol: {exc}") from None


def technician_fits(slowest_s: float, profile: str | None, protocol: str | None) -> None:
    """A usage error (exit 3) when the simulated technician could not present within the unit's
    card wait (``posbench.sim.bench.technician_fits``)."""
    from posbench.sim.bench import DEFAULT_PROFILE, sim_profile, technician_fits
    if (why := technician_fits(slowest_s, sim_profile(profile or DEFAULT_PROFILE), protocol or "")) is not None:
        raise UsageFailure(f"--technician-s: {why}")


def fault_options(values: tuple[str, ...], profile: str | None = None) -> dict[str, float]:
    """The ``--fault`` values parsed; with ``profile`` (a virtual bench's), only the causes a unit of
    that profile can have (a reader's: ``posbench.sim.unit.faults.READER_CAUSES``)."""
    from posbench.sim.unit.faults import FaultSpecError, check_shape, parse_faults
    try:
        faults = parse_faults(values)
        if profile is not None:
            from posbench.sim.bench import sim_profile
            try:
                shape = sim_profile(profile)
            except ConfigError as exc:
                raise UsageFailure(str(exc)) from None
            check_shape(faults, shape, profile)
        return faults
    except FaultSpecError as exc:
        raise UsageFailure(f"--fault: {exc}") from None
