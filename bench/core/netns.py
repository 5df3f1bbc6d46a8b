"""Linux network namespace primitives: run ``ip``/``nft``, enter a namespace, make a socket in one.

Neutral ground: the virtual bench's network lab builds its namespaces with them, and the host
drivers (echo, reachability, ARP probe) reach a unit inside a namespace with them, whoever made it.

Namespace membership is per thread, not per process: ``setns(2)`` moves only the calling
thread. Python 3.11 has no ``os.setns``, so ``call_in`` calls libc's ``setns(fd, CLONE_NEWNET)``
through ctypes in a fresh, dedicated thread that runs one function and ends; the caller's
threads never change namespace. A socket belongs to the namespace it was created in for its
whole life, also when it is later used from other threads, so ``socket_in`` creates a socket in
such a thread and hands it back for ordinary use anywhere. Threads started by a function that
runs under ``call_in`` inherit that thread's namespace (clone copies the creator's namespaces).

A socket keeps its namespace alive after ``ip netns del``: close every socket made here before
expecting the namespace's links to be gone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Sequence
from typing import TypeVar

from posbench.core.errors import BenchError
from posbench.core.threads import call_with_deadline

DEVICE = "network lab"
NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000

T = TypeVar("T")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
_libc.setns.restype = ctypes.c_int


def run(cmd: Sequence[str], timeout: float = 5.0, input: str | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a tool (``ip``, ``nft``, ``sysctl``) within ``timeout`` seconds.

    ``BenchError`` naming the command when the tool is missing, hangs, or (``check``) exits
    non-zero; its stderr is in the message.
    """
    cmd = [str(part) for part in cmd]
    text = " ".join(cmd)
    try:
        done = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise BenchError(DEVICE, f"running {text}", f"{cmd[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise BenchError(DEVICE, f"running {text}", f"no exit within {timeout:g} s") from None
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().replace("\n", "; ")[:500]
        raise BenchError(DEVICE, f"running {text}", f"exit {done.returncode}: {detail}")
    return done


def ns_exists(ns_name: str) -> bool:
    """True when ``ip netns`` knows a namespace of that name."""
    return os.path.exists(os.path.join(NETNS_DIR, ns_name))


def list_netns() -> list[str]:
    """Names of the namespaces ``ip netns`` knows (the bind mounts in /run/netns)."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def call_in(ns_name: str, fn: Callable[[], T], timeout: float = 10.0) -> T:
    """Run ``fn()`` in a new thread that entered namespace ``ns_name``; return its result.

    Exceptions of ``fn`` are re-raised here. ``BenchError`` when the namespace cannot be
    entered or ``fn`` does not return within ``timeout`` seconds (the thread is then left
    to finish on its own; it is a daemon).
    """
    def body() -> T:
        _enter(ns_name)
        return fn()

    try:
        return call_with_deadline(body, timeout, f"netns-{ns_name}")
    except TimeoutError:
        raise BenchError(DEVICE, f"running {getattr(fn, '__name__', 'a call')} in namespace {ns_name}",
                         f"no return within {timeout:g} s") from None


def socket_in(ns_name: str | None, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
              proto: int = 0) -> socket.socket:
    """A new socket that lives in namespace ``ns_name`` (None: the caller's own namespace)."""
    if ns_name is None:
        return socket.socket(family, type, proto)
    return call_in(ns_name, lambda: socket.socket(family, type, proto), timeout=5.0)


def _enter(ns_name: str) -> None:
    """Move the calling thread into ``ns_name``; BenchError when that is impossible."""
    path = os.path.join(NETNS_DIR, ns_name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise BenchError(DEVICE, f"opening namespace {ns_name}", exc.strerror or str(exc)) from None
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise BenchError(DEVICE, f"entering namespace {ns_name}", os.strerror(err))
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=1)
def have_netns() -> tuple[bool, str]:
    """(True, "") when the lab can run here: root, ``ip netns`` and ``nft`` work in a namespace.

    Otherwise (False, reason); tests skip with that reason. Checked once per process.
    """
    if os.geteuid() != 0:
        return False, "the network lab needs root (network namespaces, nftables, raw sockets)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return False, f"the network lab needs `{tool}` (iproute2 / nftables), not installed"
    name = f"pblcheck-{os.getpid()}"
    try:
        run(["ip", "netns", "add", name], timeout=5.0)
    except BenchError as exc:
        return False, f"`ip netns add` does not work here: {exc.detail}"
    try:
        run(["ip", "-n", name, "link", "add", "chkbr0", "type", "bridge"], timeout=5.0)
        run(["ip", "netns", "exec", name, "nft", "add", "table", "inet", "pblcheck"], timeout=5.0)
        call_in(name, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close(), timeout=5.0)
    except BenchError as exc:
        return False, f"namespaces exist but the lab's tools fail in them: {exc}"
    finally:
        run(["ip", "netns", "del", name], timeout=5.0, check=False)
    return True, ""
