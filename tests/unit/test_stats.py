"""An honest percentile: inside the data, never extrapolated past it."""
import pytest

from posbench.core.stats import percentile


def test_one_slow_echo_does_not_push_p95_past_the_slowest():
    echoes = [0.05] * 11 + [0.24]
    p95 = percentile(echoes, 95)
    assert 0.05 <= p95 <= 0.24
    assert p95 < 0.25, "a healthy unit failed the 0.25 s limit on an extrapolated p95"


@pytest.mark.parametrize("values,q,expected", [
    ([1.0], 95, 1.0), ([1.0, 2.0], 0, 1.0), ([1.0, 2.0], 100, 2.0), ([1.0, 2.0, 3.0], 50, 2.0),
    ([3.0, 1.0, 2.0, 4.0, 5.0], 50, 3.0),
])
def test_known_percentiles(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected)


def test_edges():
    assert percentile([], 95) is None
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    values = [0.01 * i for i in range(1, 40)]
    assert min(values) <= percentile(values, 95) <= max(values)
