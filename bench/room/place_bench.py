"""A labgrid place acquired for one triage (``PlaceBench``): acquire (or reserve, then acquire),
build the bench description from the place's resources, follow its serial ports when they move,
release at the end, however the triage ends (``stop()`` runs from the triage's ``finally``;
SIGTERM and SIGHUP end a triage as Ctrl-C does, ``posbench.core.signals``)."""
from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from posbench.drivers.serial import relocation
from posbench.core.errors import ConfigError, PortUnavailable
from posbench.room.client import RoomClient, RoomUnavailable
from posbench.room.exported import bench_data, serial_url, write_bench_toml

RESYNC_S = 20.0
"""Seconds a port of the place may take to be served again after its exporter restarted: labgrid's
coordinator gives a returning exporter's resources back to their place on its 15 s poll."""
SERVED_WITHIN_S = 10.0
"""Seconds an acquired place's serial ports may take to be served (the exporter starts a ser2net
for each: about 0.5 s per port)."""


class PlaceBench:
    """The bench description of an acquired place, valid until ``stop()``.

    ``place`` names the place; else ``tags`` reserve any free place that has them, waiting up to
    ``wait_s`` seconds. ``say`` prints progress (reservation waits, take-overs, the place taken).
    """

    def __init__(self, coordinator: str, place: str | None, tags: dict[str, str] | None,
                 wait_s: float, say: Callable[[str], None]):
        self.coordinator, self.tags, self.wait_s, self.say = coordinator, tags, wait_s, say
        self.name = place
        self.client: RoomClient | None = None
        self.addresses: dict[str, str] = {}
        self._acquired = False
        self._dir: Path | None = None
        self._locators: list[Callable[[], str]] = []

    def start(self) -> Path:
        """Acquire the place and write its bench description; returns the file."""
        self.client = client = RoomClient(self.coordinator).open()
        token = None
        try:
            if self.name is None:
                assert self.tags
                self.name, token = client.reserve(self.tags, self.wait_s, self.say)
            else:
                client.place_info(self.name)  # an unknown place is a usage error, before anything else
            self.say(f"acquiring place {self.name} on {client.address}")
            client.acquire(self.name, self.say)
            self._acquired = True
        finally:
            if token is not None:
                client.cancel_reservation(token)
        data, self.addresses = self._served()
        data["place"] = {"name": self.name, "coordinator": client.address, "addresses": self.addresses}
        self._dir = Path(tempfile.mkdtemp(prefix=f"posbench-place-{self.name}-"))
        path = write_bench_toml(data, self._dir / "bench.toml")
        for resource, url in self.addresses.items():
            relocation.follow(url, self._locator(resource), RESYNC_S)
        self.say(f"place {self.name}: " + ", ".join(f"{r} {u}" for r, u in self.addresses.items()))
        return path

    def _served(self) -> tuple[dict, dict[str, str]]:
        """The bench description once every serial port of the place is served."""
        assert self.client is not None and self.name is not None
        deadline = time.monotonic() + SERVED_WITHIN_S
        while True:
            try:
                return bench_data(self.name, self.client.resources(self.name))
            except ConfigError as exc:
                if "is not served now" not in exc.expected or time.monotonic() >= deadline:
                    raise
            time.sleep(0.2)

    def _locator(self, resource: str) -> Callable[[], str]:
        def locate() -> str:
            """Where ``resource``'s port is served now; ``PortUnavailable`` while it is not."""
            doing = f"locating {resource}'s port on place {self.name}"
            if self.client is None or self.name is None:
                raise PortUnavailable(resource, doing, "the place was released")
            try:
                found = self.client.resources(self.name).get(resource)
            except RoomUnavailable as exc:
                raise PortUnavailable(resource, doing, exc.detail) from None
            url = serial_url(found[1]) if found and found[2] else None
            if url is None:
                raise PortUnavailable(resource, doing, "the exporter does not serve it now")
            return url
        self._locators.append(locate)
        return locate

    def stop(self) -> None:
        """Release the place (if acquired) and close the session; bounded by the client's deadlines."""
        for locate in self._locators:
            relocation.forget(locate)
        client, self.client = self.client, None
        try:
            if client is not None and self._acquired and self.name is not None:
                try:
                    client.release(self.name)
                    self.say(f"released place {self.name}")
                except RoomUnavailable as exc:
                    self.say(f"could not release place {self.name} ({exc.detail}); release it with: "
                             f"labgrid-client -x {client.address} -p {self.name} release")
        finally:
            if client is not None:
                client.close()
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)

