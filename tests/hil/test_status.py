"""Unit status against the profile: memory, error counters, configuration, keys, maintenance,
and where the protocol reports them a terminal status code and lock bits."""
from datetime import date, datetime, timezone

from bench.diagnosers import judge_terminal_status
from bench.limits import Limit
from bench.profile import days_since


def test_status(ask, terminal, profile, record, needs):
    needs("status", "status", causes=("resources", "data_loss", "maintenance"))
    st = ask(terminal.status, "status")
    lim = profile.limits
    if needs("memory", "free_memory_kib", causes=("resources",), skip=False):
        record.measure("free_memory_kib", st.free_mem_kib, "KiB", lim["free_memory_kib"], cause="resources",
                       note=f"only {st.free_mem_kib} KiB of {st.total_mem_kib} KiB free")
    if needs("error_counters", "err_app", "err_comm", "err_reader", causes=("application", "pcb_intermittent"),
             skip=False):
        record.measure("err_app", st.error_counters["err_app"], "count", lim["error_counter"],
                       cause="application", strength="moderate", note="payment app error counter")
        record.measure("err_comm", st.error_counters["err_comm"], "count", lim["error_counter"],
                       cause="pcb_intermittent", strength="weak", note="communication error counter")
        record.measure("err_reader", st.error_counters["err_reader"], "count", lim["error_counter"])
    if needs("boot_id", "restarts_since_power_on", causes=("application",), skip=False):
        record.measure("restarts_since_power_on", st.restarts, "count", lim["app_restarts"],
                       cause="application", strength="moderate", note="app restarts since power-on")
    if needs("config_checksum", "config_checksum", causes=("data_loss",), skip=False):
        record.measure("config_checksum", st.cfg_crc, "", Limit(equals=st.cfg_crc_stored), cause="data_loss",
                       note=f"configuration checksum {st.cfg_crc} differs from the stored {st.cfg_crc_stored}:"
                            " configuration changed or deleted")
    if needs("keys", "keys_missing", causes=("data_loss",), skip=False):
        missing = sorted(set(profile.keys_required) - set(st.keys))
        record.measure("keys_missing", len(missing), "count", lim["keys_missing"], cause="data_loss",
                       note=f"keys missing: {', '.join(missing)}")
    if needs("maintenance", "maintenance_age_days", causes=("maintenance",), skip=False):
        record.measure("maintenance_age_days", days_since(st.last_maintenance, date.today()), "days",
                       lim["maintenance_age_days"], cause="maintenance",
                       note=f"last maintenance on {st.last_maintenance}")
    if needs("clock", "clock_drift_s", causes=("maintenance",), skip=False):
        unit_clock = datetime.strptime(st.clock, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        drift = abs((unit_clock - datetime.now(timezone.utc)).total_seconds())
        record.measure("clock_drift_s", round(drift, 1), "s", lim["clock_drift_s"], cause="maintenance",
                       strength="moderate", note=f"unit clock is {drift:.0f} s off the bench clock")
    if needs("terminal_status", "terminal_status", "locks", skip=False):
        judge_terminal_status(record, terminal.protocol, st, lim)
