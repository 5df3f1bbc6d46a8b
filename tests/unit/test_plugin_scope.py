"""posbench's pytest plugin loads in every pytest session (a pytest11 entry point): it must leave
tests that use no bench alone, whatever they raise."""
from __future__ import annotations

pytest_plugins = ["pytester"]


def test_a_config_error_in_a_test_without_a_bench_is_that_tests_failure(pytester):
    pytester.makepyfile('''
from posbench.core.errors import BenchError, ConfigError

def test_config_error():
    raise ConfigError("b.toml", "power.port", "a made-up mistake")

def test_bench_error():
    raise BenchError("supply", "reading", "a made-up failure")

def test_after():
    pass
''')
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2, passed=1)  # nothing stopped the session
    assert "posbench verdict" not in result.stdout.str()
