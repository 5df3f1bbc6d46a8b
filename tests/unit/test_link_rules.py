"""The ECR link rule (``posbench.diagnosis.link``) on hand-made counts."""
from posbench.diagnosis.link import commands_lost


def test_silence_is_the_application_and_damaged_frames_the_board():
    e = commands_lost(3, 1, 20)
    assert (e.cause, e.ratio, e.note) == ("application", 60.0, "3 of 20 ECR commands unanswered, 1 corrupt")
    assert commands_lost(1, 3, 20).cause == "pcb_intermittent"
    assert commands_lost(2, 2, 20).cause == "application"  # a tie is the application's
