"""The bench room's coordinator, seen by one triage: ``RoomClient``, a labgrid client session.

labgrid's own client API (``labgrid.remote.client.ClientSession``, gRPC on asyncio) runs on an
event loop in a thread of its own, so its stream of place and resource updates keeps flowing
while the triage runs pytest in the main thread. One session per process (a second one in the
same process breaks the coordinator's stream): a process makes one ``RoomClient``. Every call
into it has a deadline (``CALL_TIMEOUT_S``); a coordinator that does not answer is a bench error.

A place this process acquired is also claimed on this host (``posbench.setup.lock``, an flock the
kernel drops however the process ends): a place that labgrid says is acquired by this user on
this host while nobody holds its claim was left behind by a triage that was killed (SIGKILL), and
the next triage takes it over.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from posbench.core.errors import BenchError, ConfigError
from posbench.setup.lock import BenchInUse, BenchLock

T = TypeVar("T")

DEFAULT_PORT = 20408
"""labgrid's coordinator port when an address names none."""
CALL_TIMEOUT_S = 10.0
"""Seconds a call to the coordinator may take (an acquire waits for ser2net: about 0.5 s per port)."""
POLL_S = 1.0
"""Seconds between looks at a waiting reservation (labgrid-client polls as often)."""


class RoomUnavailable(BenchError):
    """The coordinator cannot be reached or did not answer in time."""


class PlaceBusy(BenchError):
    """The place is acquired by someone else (or by another live triage of this user)."""


class NoFreePlace(BenchError):
    """No place matching the tags became free within the wait."""


def coordinator_address(text: str) -> str:
    """``HOST[:PORT]`` of the coordinator, checked; ``ConfigError`` names the expected form."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(DEFAULT_PORT)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("--coordinator", "", f"{text!r}: expected HOST[:PORT], e.g. 127.0.0.1:{DEFAULT_PORT}")
    return f"{host}:{port}"


def parse_tags(text: str) -> dict[str, str]:
    """``"model=PT100,protocol=agent"`` (comma or space separated) -> a dict; ``ConfigError`` if
    a pair has no ``=``."""
    tags: dict[str, str] = {}
    for pair in text.replace(",", " ").split():
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise ConfigError("--reserve", "", f"{pair!r}: expected KEY=VALUE pairs, e.g. model=PT100")
        tags[key] = value
    if not tags:
        raise ConfigError("--reserve", "", "expected KEY=VALUE pairs, e.g. model=PT100")
    return tags


class RoomClient:
    """One labgrid client session on its own event-loop thread (see the module doc)."""

    def __init__(self, address: str, timeout_s: float = CALL_TIMEOUT_S):
        self.address, self.timeout_s = coordinator_address(address), timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: Any = None
        self._claims: dict[str, BenchLock] = {}

    # -- the session -----------------------------------------------------------------------------
    def open(self) -> "RoomClient":
        from labgrid.remote.client import ClientSession
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="labgrid-client", daemon=True)
        self._thread.start()

        async def start() -> Any:
            assert self._loop is not None
            session = ClientSession(self.address, self._loop,
                                    args=argparse.Namespace(allow_unmatched=False, kick=False))
            await session.start()
            return session
        try:
            self._session = self._call(start, "connecting to the coordinator")
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for name in list(self._claims):
            self._claims.pop(name).release()
        loop, self._loop = self._loop, None
        if loop is None:
            return
        session, self._session = self._session, None
        if session is not None:
            async def stop() -> None:
                await session.stop()
                await session.close()
            future = asyncio.run_coroutine_threadsafe(stop(), loop)
            try:
                future.result(2.0)
            except Exception:  # noqa: BLE001 - a coordinator already gone: nothing to close
                future.cancel()
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(2.0)
        if not loop.is_running():
            loop.close()

    def __enter__(self) -> "RoomClient":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, make: Callable[[], Coroutine[Any, Any, T]], doing: str, timeout_s: float | None = None) -> T:
        """Run ``make()`` on the session's loop; ``RoomUnavailable`` after the deadline or when
        the coordinator refuses the connection."""
        import grpc
        from labgrid.remote.client import Error
        if self._loop is None:
            raise RoomUnavailable("bench room", doing, "the client session is closed")
        future = asyncio.run_coroutine_threadsafe(make(), self._loop)
        try:
            return future.result(self.timeout_s if timeout_s is None else timeout_s)
        except FutureTimeout:
            future.cancel()
            raise RoomUnavailable("bench room", doing, f"the coordinator {self.address} did not answer within "
                                  f"{self.timeout_s:g} s") from None
        except (grpc.aio.AioRpcError, Error) as exc:
            detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
            raise RoomUnavailable("bench room", doing, f"coordinator {self.address}: {detail}") from None

    def _read(self, fn: Callable[[Any], T]) -> T:
        """``fn(session)`` on the loop's thread: the session's dicts change only there."""
        async def read() -> T:
            return fn(self._session)
        return self._call(read, "reading the coordinator's state")

    def _rpc(self, method: str, request: Any, doing: str, timeout_s: float | None = None) -> Any:
        async def call() -> Any:
            reply = await getattr(self._session.stub, method)(request)
            await self._session.sync_with_coordinator()
            return reply
        return self._call(call, doing, timeout_s)

    @property
    def me(self) -> str:
        """Who this client is to the coordinator: ``host/user`` (labgrid's LG_HOSTNAME, LG_USERNAME)."""
        import getpass
        return f"{os.environ.get('LG_HOSTNAME', socket.gethostname())}/{os.environ.get('LG_USERNAME', getpass.getuser())}"

    # -- places ----------------------------------------------------------------------------------
    def place_names(self) -> list[str]:
        return self._read(lambda s: sorted(s.places))

    def place_info(self, name: str) -> dict[str, Any]:
        """``{"acquired": holder or None, "tags": {...}, "reservation": token or None}``;
        ``ConfigError`` for a place the coordinator does not know."""
        def look(s: Any) -> dict[str, Any] | None:
            place = s.places.get(name)
            if place is None:
                return None
            return {"acquired": place.acquired, "tags": dict(place.tags), "reservation": place.reservation}
        info = self._read(look)
        if info is None:
            known = ", ".join(self.place_names()) or "none"
            raise ConfigError("--place", "", f"no place {name!r} on the coordinator {self.address} (places: {known})")
        return info

    def matching(self, tags: dict[str, str]) -> list[str]:
        """Places whose tags include every one of ``tags``."""
        return self._read(lambda s: sorted(n for n, p in s.places.items()
                                           if all(p.tags.get(k) == v for k, v in tags.items())))

    def acquire(self, name: str, say: Callable[[str], None]) -> None:
        """Acquire ``name`` and claim it on this host. A place another user or host holds, or one
        another live triage of ours holds: ``PlaceBusy`` naming the holder. One left acquired by
        a killed triage of ours is taken over (released and acquired afresh), with a message."""
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb
        claim = self._claim(name)
        try:
            holder = self.place_info(name)["acquired"]
            if holder and holder != self.me:
                raise PlaceBusy("bench room", f"acquiring place {name}",
                                f"it is acquired by {holder}; wait for it, or ask {holder.split('/')[-1]} to "
                                f"release it (labgrid-client -x {self.address} -p {name} release)")
            if holder:
                say(f"place {name} was left acquired by an earlier run of yours ({holder}) that did not "
                    "release it (killed?): taking it over")
                self._rpc("ReleasePlace", pb.ReleasePlaceRequest(placename=name), f"taking over place {name}")
            self._rpc("AcquirePlace", pb.AcquirePlaceRequest(placename=name), f"acquiring place {name}")
        except BaseException:
            claim.release()
            raise
        self._claims[name] = claim

    def _claim(self, name: str) -> BenchLock:
        try:
            return BenchLock({f"labgrid place {self.address}/{name}": "place"}).acquire()
        except BenchInUse as exc:
            raise PlaceBusy("bench room", f"acquiring place {name}",
                            f"another triage on this host holds it ({exc.detail.split('held by ', 1)[-1]})") from None

    def release(self, name: str) -> None:
        """Release ``name`` (if this client still holds it) and drop its claim."""
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb
        try:
            if self.place_info(name)["acquired"] == self.me:
                self._rpc("ReleasePlace", pb.ReleasePlaceRequest(placename=name), f"releasing place {name}")
        finally:
            claim = self._claims.pop(name, None)
            if claim is not None:
                claim.release()

    def take_over_left(self, tags: dict[str, str], say: Callable[[str], None]) -> None:
        """Release the places matching ``tags`` that a killed triage of ours left acquired (no
        live claim on this host), so a reservation can be given them."""
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb
        for name in self.matching(tags):
            if self.place_info(name)["acquired"] != self.me:
                continue
            try:
                claim = self._claim(name)
            except PlaceBusy:
                continue  # a live triage of ours: not left behind
            try:
                say(f"place {name} was left acquired by an earlier run of yours ({self.me}) that did not "
                    "release it (killed?): taking it over")
                self._rpc("ReleasePlace", pb.ReleasePlaceRequest(placename=name), f"taking over place {name}")
            finally:
                claim.release()

    def reserve(self, tags: dict[str, str], timeout_s: float, say: Callable[[str], None],
                every_s: float = 5.0) -> tuple[str, str]:
        """Wait up to ``timeout_s`` s for a free place matching ``tags`` (a labgrid reservation),
        saying every ``every_s`` s what it waits for; returns the place (still to be acquired:
        only this user may while the reservation lasts) and the reservation's token, to cancel
        once the place is acquired. ``NoFreePlace`` after the wait, ``ConfigError`` when no place
        has those tags at all."""
        from labgrid.remote.common import Reservation, ReservationState
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb
        wanted = ",".join(f"{k}={v}" for k, v in tags.items())
        if not self.matching(tags):
            raise ConfigError("--reserve", "", f"no place on the coordinator {self.address} has the tags {wanted}")
        self.take_over_left(tags, say)
        reply = self._rpc("CreateReservation", pb.CreateReservationRequest(
            filters={"main": pb.Reservation.Filter(filter=tags)}, prio=0.0), f"reserving a place ({wanted})")
        token = Reservation.from_pb2(reply.reservation).token
        start = last_said = time.monotonic()
        try:
            while True:
                res = Reservation.from_pb2(self._rpc("PollReservation", pb.PollReservationRequest(token=token),
                                                     "waiting for the reservation").reservation)
                if res.state is ReservationState.allocated and res.allocations.get("main"):
                    return res.allocations["main"][0], token
                if res.state not in (ReservationState.waiting, ReservationState.allocated):
                    raise NoFreePlace("bench room", f"reserving a place ({wanted})",
                                      f"the coordinator ended the reservation ({res.state.name})")
                waited = time.monotonic() - start
                if waited >= timeout_s:
                    raise NoFreePlace("bench room", f"reserving a place ({wanted})",
                                      f"none became free within {timeout_s:g} s: {self._holders(tags)}")
                if time.monotonic() - last_said >= every_s:
                    last_said = time.monotonic()
                    say(f"waiting for a free place ({wanted}), {waited:.0f} s of up to {timeout_s:g} s: "
                        f"{self._holders(tags)}")
                time.sleep(POLL_S)
        except BaseException:
            self.cancel_reservation(token)
            raise

    def cancel_reservation(self, token: str) -> None:
        """Drop the reservation (an acquired place stays acquired); quietly, it expires anyway."""
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb
        try:
            self._rpc("CancelReservation", pb.CancelReservationRequest(token=token), "cancelling the reservation", 2.0)
        except RoomUnavailable:
            pass

    def _holders(self, tags: dict[str, str]) -> str:
        names = self.matching(tags)
        held = [f"{n} held by {self.place_info(n)['acquired']}" for n in names if self.place_info(n)["acquired"]]
        return "; ".join(held) or "matching places are reserved for others"

    # -- resources ---------------------------------------------------------------------------------
    def resources(self, name: str) -> dict[str, tuple[str, dict[str, Any], bool]]:
        """The acquired place's resources: resource name -> (class, params, available)."""
        def look(s: Any) -> dict[str, tuple[str, dict[str, Any], bool]]:
            place = s.places.get(name)
            found: dict[str, tuple[str, dict[str, Any], bool]] = {}
            for exporter, group, _cls, res_name in (place.acquired_resources if place else []):
                res = s.resources.get(exporter, {}).get(group, {}).get(res_name)
                if res is not None and res.data:  # a resource its exporter withdrew is left empty
                    found[res_name] = (res.cls, dict(res.params), bool(res.avail))
            return found
        return self._read(look)
