"""Rules for the ECR link's health (``tests/hil/test_ecr_link.py``): which cause commands the
unit left unanswered point to."""
from __future__ import annotations

from posbench.spec.evidence import Evidence


def commands_lost(unanswered: int, corrupt: int, sent: int) -> Evidence:
    """The evidence a failed ``ecr_success_rate`` gives: commands met with silence point to the
    payment application, commands answered with damaged frames to the board (its link)."""
    return Evidence.of("application" if unanswered >= corrupt else "pcb_intermittent", "strong",
                       f"{unanswered} of {sent} ECR commands unanswered, {corrupt} corrupt")
