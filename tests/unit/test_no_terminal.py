"""A manual power step with nobody to ask: said as such, never "no confirmation within 120 s".

Run in a child process of its own session (``start_new_session``): it has no controlling
terminal, as under ssh without -t or in a CI job.
"""
import subprocess
import sys
import textwrap

WITHOUT_TTY = textwrap.dedent("""
    import time
    from posbench.core.console import ask_technician
    from posbench.drivers.power import ManualPower
    from posbench.core.errors import BenchError, NoTerminal
    t = time.monotonic()
    try:
        ManualPower(ask_technician, timeout_s=120.0).off()
    except NoTerminal as exc:
        print("NoTerminal", isinstance(exc, BenchError), exc)
    except BenchError as exc:
        print("BenchError", exc)
""")


def test_a_manual_power_step_without_a_terminal_says_nobody_could_be_asked():
    proc = subprocess.run([sys.executable, "-c", WITHOUT_TTY], capture_output=True, text=True, timeout=60,
                          start_new_session=True, stdin=subprocess.DEVNULL)
    out = proc.stdout.strip()
    assert out.startswith("NoTerminal True technician: asking \"Switch the unit's power OFF"), out + proc.stderr
    assert "nobody could be asked" in out and "no terminal" in out
    assert "within 120 s" not in out
