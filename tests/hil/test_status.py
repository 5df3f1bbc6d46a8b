"""Unit status against the profile: memory, error counters, configuration, keys, maintenance,
and where the protocol reports them a terminal status code and lock bits."""
from datetime import date, datetime, timezone

from posbench.diagnosis.rules import STATUS_CAUSES, terminal_status
from posbench.core.limits import HOLDS
from posbench.spec.measures import Measure, measures
from posbench.setup.profile import days_since


@measures(
    Measure("free_memory_kib", "KiB", "free_memory_kib", bears_on=("resources",), evidence="strong", needs="memory"),
    Measure("err_app", "count", "error_counter", bears_on=("application",), evidence="moderate",
            needs="error_counters"),
    Measure("err_comm", "count", "error_counter", bears_on=("pcb_intermittent",), evidence="weak",
            needs="error_counters"),
    Measure("err_reader", "count", "error_counter", needs="error_counters"),
    Measure("restarts_since_power_on", "count", "app_restarts", bears_on=("application",), evidence="moderate",
            needs="boot_id"),
    Measure("config_checksum_matches", "bool", lambda profile: HOLDS, bears_on=("data_loss",),
            evidence="strong", needs="config_checksum"),
    Measure("keys_missing", "count", "keys_missing", bears_on=("data_loss",), evidence="strong", needs="keys"),
    Measure("maintenance_age_days", "days", "maintenance_age_days", bears_on=("maintenance",), evidence="strong",
            needs="maintenance"),
    Measure("clock_drift_s", "s", "clock_drift_s", bears_on=("maintenance",), evidence="moderate", needs="clock"),
    Measure("terminal_status", "", "terminal_status", bears_on=STATUS_CAUSES, needs="terminal_status"),
    Measure("locks", "count", "locks", bears_on=STATUS_CAUSES, needs="terminal_status"),
    needs="status",
)
def test_status(unit, terminal, profile, record):
    st = unit.ask(record, terminal.status, "status")
    if record.wanted("free_memory_kib"):
        record.measure("free_memory_kib", st.free_mem_kib,
                       note=f"only {st.free_mem_kib} KiB of {st.total_mem_kib} KiB free")
    if record.wanted("err_app"):
        record.measure("err_app", st.error_counters["err_app"],
                       note="payment app error counter")
        record.measure("err_comm", st.error_counters["err_comm"],
                       note="communication error counter")
        record.measure("err_reader", st.error_counters["err_reader"])
    if record.wanted("restarts_since_power_on"):
        record.measure("restarts_since_power_on", st.restarts,
                       note="app restarts since power-on")
    if record.wanted("config_checksum_matches"):
        record.measure("config_checksum_matches", int(st.cfg_crc == st.cfg_crc_stored),
                       note=f"configuration checksum {st.cfg_crc} differs from the stored {st.cfg_crc_stored}:"
                            " configuration changed or deleted")
    if record.wanted("keys_missing"):
        missing = sorted(set(profile.keys_required) - set(st.keys))
        record.measure("keys_missing", len(missing), note=f"keys missing: {', '.join(missing)}")
    if record.wanted("maintenance_age_days"):
        record.measure("maintenance_age_days", days_since(st.last_maintenance, date.today()),
                       note=f"last maintenance on {st.last_maintenance}")
    if record.wanted("clock_drift_s"):
        unit_clock = datetime.strptime(st.clock, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        drift = abs((unit_clock - datetime.now(timezone.utc)).total_seconds())
        record.measure("clock_drift_s", round(drift, 1),
                       note=f"unit clock is {drift:.0f} s off the bench clock")
    if record.wanted("locks"):
        record.take(terminal_status(terminal.protocol, st, str(record.limit("terminal_status"))))
