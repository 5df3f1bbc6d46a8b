"""The virtual bench's options a command shares (``--profile``, ``--protocol``, ``--fault``,
``--technician-s``), checked before anything starts: a mistake is a usage error (exit 3)."""
from __future__ import annotations

from posbench.cli.common import UsageFailure
from posbench.core.errors import ConfigError


def sim_shape(profile: str | None, protocol: str | None) -> str:
    """The protocol of a virtual bench shaped like ``profile``: ``protocol`` if the profile speaks
    it, else its first; a usage error (exit 3) for an unknown profile or a protocol it does not speak."""
    from posbench.sim.bench import DEFAULT_PROFILE, sim_profile, sim_protocol
    try:
        shape = sim_profile(profile or DEFAULT_PROFILE)
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None  # names --profile
    try:
        return sim_protocol(shape, protocol)
    except ValueError as exc:
        raise UsageFailure(f"--protocol: {exc}") from None


def technician_fits(slowest_s: float, profile: str | None, protocol: str) -> None:
    """A usage error (exit 3) when the simulated technician could not present within the unit's
    card wait (``posbench.sim.bench.technician_fits``)."""
    from posbench.sim.bench import DEFAULT_PROFILE, sim_profile, technician_fits
    if (why := technician_fits(slowest_s, sim_profile(profile or DEFAULT_PROFILE), protocol)) is not None:
        raise UsageFailure(f"--technician-s: {why}")


def fault_options(values: tuple[str, ...]) -> dict[str, float]:
    from posbench.sim.unit.faults import FaultSpecError, parse_faults
    try:
        return parse_faults(values)
    except FaultSpecError as exc:
        raise UsageFailure(f"--fault: {exc}") from None
