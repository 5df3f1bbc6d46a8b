"""No source module of posbench is over 500 lines (issue "One house": small modules named for
what they hold). A module that grew past it is split by concern, not allowed here."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIMIT = 500
"""Lines per module, at most."""

ALLOWED: dict[str, str] = {}
"""Modules still over the limit, each with the work that splits it."""


def lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_module_is_over_500_lines():
    over = [f"{path.relative_to(REPO)}: {n} lines" for folder in ("bench", "drivers", "fixtures")
            for path in sorted((REPO / folder).rglob("*.py"))
            if (n := lines(path)) > LIMIT and path.relative_to(REPO).as_posix() not in ALLOWED]
    assert not over, f"modules over {LIMIT} lines (split them by concern):\n" + "\n".join(over)


def test_the_allowed_modules_exist():
    assert [name for name in ALLOWED if not (REPO / name).is_file()] == []
