"""Plots for the HTML report (matplotlib, headless Agg backend), as PNG bytes."""
from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display on a bench host or in CI
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def supply_trace(times_s: list[float], volts: list[float], amps: list[float], title: str,
                 floor_v: float | None = None, marks: Sequence[tuple[float, str]] = ()) -> bytes:
    """Voltage and current against time (seconds from the start of the trace)."""
    fig, (ax_v, ax_a) = plt.subplots(2, 1, sharex=True, figsize=(7, 4))
    ax_v.plot(times_s, volts, color="#1f5fa8", drawstyle="steps-post")
    ax_v.set_ylabel("supply (V)")
    if floor_v is not None:
        ax_v.axhline(floor_v, color="#b3261e", linestyle="--", linewidth=1, label=f"unit minimum {floor_v:g} V")
        ax_v.legend(loc="lower right", fontsize=8)
    ax_a.plot(times_s, amps, color="#a15c00", drawstyle="steps-post")
    ax_a.set_ylabel("current (A)")
    ax_a.set_xlabel("time (s)")
    for t, label in marks:
        for ax in (ax_v, ax_a):
            ax.axvline(t, color="#666", linewidth=0.8, linestyle=":")
        ax_v.annotate(label, (t, ax_v.get_ylim()[1]), fontsize=7, rotation=90, va="top")
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def boot_times(seconds: list[float | None], limit_s: float | None, title: str) -> bytes:
    """Boot time of each power cycle; a failed boot is drawn as a red cross at the limit."""
    fig, ax = plt.subplots(figsize=(7, 2.8))
    xs = list(range(1, len(seconds) + 1))
    ok = [(x, s) for x, s in zip(xs, seconds) if s is not None]
    if ok:
        ax.plot([x for x, _ in ok], [s for _, s in ok], "o-", color="#1f5fa8", label="boot time")
    failed = [x for x, s in zip(xs, seconds) if s is None]
    if failed:
        ax.plot(failed, [limit_s or 0] * len(failed), "x", color="#b3261e", markersize=10, label="failed boot")
    if limit_s is not None:
        ax.axhline(limit_s, color="#b3261e", linestyle="--", linewidth=1, label=f"limit {limit_s:g} s")
    ax.set_xlabel("power cycle")
    ax.set_ylabel("seconds")
    ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _png(fig)
