"""`posbench sim` options for training benches: the unit's timing and the host's own rules."""
import pytest

from .conftest import posbench, start_sim, stop_sim


@pytest.mark.timeout(30)
@pytest.mark.parametrize("args,needle", [
    (["--timing", "warp_s=1"], "unknown timing 'warp_s'"),
    (["--timing", "boot_s=soon"], "not a number"),
    (["--timing", "boot_s=-1"], "outside 0..600"),
])
def test_bad_timing_is_a_usage_error(tmp_path, args, needle):
    proc = posbench("sim", "--write-bench", str(tmp_path / "b.toml"), *args, cwd=tmp_path, timeout=20)
    assert proc.returncode == 3 and needle in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.timeout(120)
def test_slow_host_makes_the_unit_show_its_own_01(run_triage, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\ncode = "00"\nmin_amount = 10000\ndelay_s = 3.0\nname = "slow issuer"\n')
    proc, bench = start_sim(tmp_path, "--rules", str(rules), "--timing", "boot_s=0.5", "--seed", "3")
    try:
        r = run_triage("--bench", str(bench))
    finally:
        stop_sim(proc)
    doc = r.doc
    assert doc["code01_origin"] == "terminal", doc.get("code01")
    assert {o["reason"] for o in doc["code01"]} == {"host_timeout"}
    # the unit is otherwise healthy and posbench names no unit cause for a slow host
    assert doc["verdict"] in ("inconclusive", "pass") and not doc["causes"]
    # in words on the first screen, never the raw measurement name
    assert r.code == 1 and "sales the unit itself answered with code 01" in r.out, r.out
    assert "terminal_01_count" not in r.out
