"""ECR link health over repeated commands: answers, latency, latency growth, restarts."""
import statistics
import time

from posbench.core import progress
from posbench.core.errors import ProtocolError, UnitNotResponding
from posbench.spec.measures import Measure, measures
from posbench.core.stats import percentile
from posbench.diagnosis import link
from posbench.drivers.terminal import has


MIN_TIMED = 8
"""Answered commands needed before reply latency and its growth are judged."""


@measures(
    Measure("ecr_success_rate", "ratio", "ecr_success_rate", bears_on=("application", "pcb_intermittent")),
    Measure("app_restarts", "count", "app_restarts", bears_on=("application",), evidence="strong", needs="boot_id"),
    Measure("ecr_naks", "count", "ecr_naks", bears_on=("pcb_intermittent",), evidence="moderate",
            needs="link_counters"),
    Measure("ecr_reply_p95_s", "s", "ecr_reply_p95_s", bears_on=("resources",), evidence="moderate"),
    Measure("ecr_latency_slope_ms_per_cmd", "ms/command", "ecr_latency_slope_ms_per_cmd", bears_on=("resources",),
            evidence="strong"),
    needs="status",  # the commands it repeats (status, identity)
)
def test_link_health(terminal, unit, profile, record):
    n = profile.tests.link_commands
    latencies: list[float] = []
    unanswered = corrupt = 0
    boot_ids: list[str] = []
    stats_before = terminal.link_counters()
    identifies = has(terminal, "identity")  # else every command is a status question (Caisse-AP's probe)
    with progress.waiting(f"{n} ECR commands to the unit", None):
        for i in range(n):
            progress.step("commands", i + 1, n)
            start, garbles = time.monotonic(), unit.garbles()
            try:
                if i % 2 and identifies:
                    terminal.identify()
                else:
                    boot_ids.append(terminal.status().boot_id or "")
                latencies.append(time.monotonic() - start)
            except UnitNotResponding:
                if unit.garbles() > garbles:  # no answer because its frames came damaged
                    corrupt += 1
                    continue
                unanswered += 1
                if not unit.ready():
                    break  # the unit stayed silent: what was measured so far stands
            except ProtocolError:
                corrupt += 1
    stats = {k: v - stats_before.get(k, 0) for k, v in terminal.link_counters().items()}
    success = len(latencies) / n
    record.measure("ecr_success_rate", round(success, 3), if_failed=link.commands_lost(unanswered, corrupt, n))
    if record.wanted("app_restarts"):
        restarts = len(set(boot_ids)) - 1 if boot_ids else 0
        record.measure("app_restarts", restarts,
                       note=f"the payment app restarted {restarts} time(s) during {n} commands (boot id changed)")
    if record.wanted("ecr_naks"):
        record.measure("ecr_naks", stats.get("naks_sent", 0) + stats.get("naks_received", 0),
                       note="frames with a bad checksum on the ECR link")
    if len(latencies) < MIN_TIMED:
        for name in ("ecr_reply_p95_s", "ecr_latency_slope_ms_per_cmd"):
            record.unmeasured(name, f"only {len(latencies)} of {n} commands were answered: too few to time")
        return
    p95 = percentile(latencies, 95)
    assert p95 is not None  # there are MIN_TIMED latencies at least
    record.measure("ecr_reply_p95_s", round(p95, 4))
    slope, stderr = theil_sen_slope(latencies)
    # Judge the slope's lower 3-sigma bound: a noisy link (remote serial, a busy bench host)
    # widens the bound instead of posing as a unit that slows down.
    lower_ms = (slope - 3 * stderr) * 1000
    record.measure("ecr_latency_slope_ms_per_cmd", round(lower_ms, 3),
                   note=f"each reply took {slope * 1000:.2f} ms longer than the one before "
                        f"(at least {lower_ms:.2f} ms at 3 sigma) over {len(latencies)} commands")


def theil_sen_slope(values: list[float]) -> tuple[float, float]:
    """Median of pairwise slopes (seconds per command), robust to a few slow outliers, and the
    standard error of a slope fitted with those residuals."""
    n = len(values)
    slope = statistics.median((values[j] - values[i]) / (j - i)
                              for i in range(n) for j in range(i + 1, n))
    intercept = statistics.median(v - slope * i for i, v in enumerate(values))
    residuals = [v - (intercept + slope * i) for i, v in enumerate(values)]
    spread = sum((i - (n - 1) / 2) ** 2 for i in range(n))
    stderr = (sum(r * r for r in residuals) / (n - 2) / spread) ** 0.5
    return slope, stderr
