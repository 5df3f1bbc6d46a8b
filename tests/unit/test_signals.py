"""A stop signal that lands where Python cannot raise (a weakref callback) still stops the command."""
import os
import subprocess
import sys
import textwrap

STOP_IN_A_FINALIZER = textwrap.dedent("""
    import gc, os, signal, time, weakref

    class Thing:
        pass

    def finalizer(_ref):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs here, inside the callback, where its raise is dropped
            pass

    def stop_in_a_finalizer():
        thing = Thing()
        ref = weakref.ref(thing, finalizer)
        del thing
        gc.collect()
""")

PROGRAM = STOP_IN_A_FINALIZER + textwrap.dedent("""
    from posbench.core.signals import STOPPED, catch_stop_signals

    catch_stop_signals()
    stop_in_a_finalizer()
    print("after the finalizer", STOPPED, flush=True)
    began = time.monotonic()
    try:
        time.sleep(5)  # a blocking wait, as in a join or a socket read: the stop must cut it short
        print("never stopped", flush=True)
    except KeyboardInterrupt as exc:
        print("stopped by", exc, "in the wait" if time.monotonic() - began < 4 else "after the wait", flush=True)
        signal.raise_signal(signal.SIGTERM)  # a later signal is still ignored
        time.sleep(0.2)
        print("clean-up ran to its end", flush=True)
""")


def test_a_stop_swallowed_by_a_finalizer_is_raised_again_afterwards():
    proc = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["after the finalizer {'by': 'SIGTERM'}", "stopped by SIGTERM in the wait",
                                        "clean-up ran to its end"], proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr


def test_other_unraisable_exceptions_are_still_printed():
    program = textwrap.dedent("""
        from posbench.core.signals import catch_stop_signals
        catch_stop_signals()
        class Broken:
            def __del__(self):
                raise ValueError("from __del__")
        Broken()
    """)
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30)
    assert "Exception ignored" in proc.stderr and "ValueError: from __del__" in proc.stderr, proc.stderr


HIL_LIKE_TEST = STOP_IN_A_FINALIZER + textwrap.dedent("""
    def test_stopped_in_a_finalizer():
        stop_in_a_finalizer()
        time.sleep(5)

    def test_after(tmp_path):
        open(os.environ["RAN_AFTER"], "w").close()
""")

RUN_LIKE_THE_TRIAGE = textwrap.dedent("""
    import sys, pytest
    from posbench.run.runner import PLUGINS_OFF
    from posbench.core.signals import catch_stop_signals
    catch_stop_signals()
    print("pytest exit", int(pytest.main([sys.argv[1], *PLUGINS_OFF, "-o", "addopts="])), flush=True)
""")


def test_a_stop_swallowed_in_a_hil_test_ends_the_pytest_session(tmp_path):
    """The triage's pytest session keeps the hook (pytest's unraisable-exception plugin is off)."""
    (tmp_path / "test_hil_like.py").write_text(HIL_LIKE_TEST)
    ran_after = tmp_path / "ran-after"
    proc = subprocess.run([sys.executable, "-c", RUN_LIKE_THE_TRIAGE, str(tmp_path / "test_hil_like.py")],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "RAN_AFTER": str(ran_after)})
    assert "pytest exit 2" in proc.stdout, proc.stdout + proc.stderr  # INTERRUPTED
    assert not ran_after.exists(), "the session went on after the stop"
    assert "Exception ignored" not in proc.stderr + proc.stdout, proc.stderr


SERVER_STOPPED_AS_IT_SAYS_WHERE_IT_IS = textwrap.dedent("""
    import contextlib, os, signal
    from posbench.cli.foreground import in_foreground
    from posbench.core.signals import catch_stop_signals

    catch_stop_signals()

    @contextlib.contextmanager
    def server():
        yield "a server"
        print("cleaned up", flush=True)

    def started(_server):  # whoever reads the announcement stops it at once
        print("announced", flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        print("announcement done", flush=True)

    in_foreground(server, started, "a test server", "stopped")
""")


def test_a_server_stopped_right_after_announcing_itself_stops_normally():
    """``posbench sim`` writes its bench file, and a test (or a triage) may SIGTERM it in the same
    instant: that is its normal end, exit 0, not an interrupted start-up (seen in CI under load)."""
    run = subprocess.run([sys.executable, "-c", SERVER_STOPPED_AS_IT_SAYS_WHERE_IT_IS], capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.split() == ["announced", "announcement", "done", "cleaned", "up", "stopped"], run.stdout


def test_a_stop_the_command_acted_on_is_not_raised_again_late():
    """The command noticed the stop (STOPPED) and said INTERRUPTED before the redelivery came (a
    loaded machine delays it): that late redelivery must not kill the process by SIGINT."""
    program = STOP_IN_A_FINALIZER + textwrap.dedent("""
        import sys
        from posbench.core.signals import STOPPED, acknowledge, catch_stop_signals

        catch_stop_signals()
        stop_in_a_finalizer()
        assert STOPPED == {"by": "SIGTERM"}
        acknowledge()  # what the CLI does as it says INTERRUPTED
        time.sleep(0.5)  # the redelivery timer fires meanwhile
        print("wound down", flush=True)
        sys.exit(2)
    """)
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, (proc.returncode, proc.stdout + proc.stderr)
    assert proc.stdout.splitlines() == ["wound down"] and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
