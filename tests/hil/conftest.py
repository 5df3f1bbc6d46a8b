"""The HIL suite: every test here runs against the bench named by --bench (or a virtual one)."""
from pathlib import Path

import pytest

ORDER = ["test_identity", "test_ecr_link", "test_status", "test_transaction_log", "test_code01",
         "test_read_paths", "test_network", "test_power"]
"""Cheap checks first, so a unit that fails early has told what it can."""


HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    """The suite's own tests (those under this directory, whatever else a session collected)
    run in ``ORDER`` after everything else, each marked ``hil``."""
    def ours(item) -> bool:
        return HERE in item.path.resolve().parents
    def rank(item):
        module = item.path.stem
        return (1, ORDER.index(module) if module in ORDER else len(ORDER)) if ours(item) else (0, 0)
    items.sort(key=rank)
    for item in items:
        if ours(item):
            item.add_marker(pytest.mark.hil)


@pytest.fixture(autouse=True)
def _unit_identified(request: pytest.FixtureRequest) -> None:
    """A test that talks to the unit runs only once the unit has identified itself (``identity``
    waits for it and power cycles a silent one): a port where nothing answers is no measurement
    of the unit. Tests that need nothing of it (the LAN, the host port, the USB bus) run anyway."""
    if "terminal" in request.fixturenames:
        request.getfixturevalue("identity")
