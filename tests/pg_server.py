"""A throwaway PostgreSQL server for the store's tests (Debian's postgresql package).

``postgres_server()`` runs ``initdb`` into a temporary directory, starts the server listening
only on a unix socket inside that directory (no TCP port at all), and stops it with
``pg_ctl stop -m fast`` and removes the directory when the ``with`` block ends, even when a test
failed. A test session killed outright (SIGKILL) cannot clean up: the next ``postgres_server``
stops and removes what such a session left behind (its directory names the dead owner pid). As root it runs the server as the ``postgres`` system user (initdb and postgres refuse
to run as root) through ``runuser``. ``require_binaries()`` skips the calling test when the
binaries are missing, except in CI (``CI`` set), where that is a failure.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30
CMD_TIMEOUT_S = 60
SUPERUSER = "postgres"


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: Debian's newest /usr/lib/postgresql/N/bin, else PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


def require_binaries() -> Path:
    """The PostgreSQL bin directory; skips the test without one (fails in CI)."""
    bindir = find_bindir()
    if bindir is None or not (bindir / "initdb").exists():
        reason = "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(reason + " (required in CI)")
        pytest.skip(reason)
    return bindir


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], cwd: Path, timeout: float = CMD_TIMEOUT_S) -> subprocess.CompletedProcess:
    proc = subprocess.run(_as_server_user(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    return proc


@contextmanager
def postgres_server(bindir: Path | None = None) -> Iterator[str]:
    """Start a private PostgreSQL; yields the unix socket directory to use as ``host``."""
    bindir = bindir or require_binaries()
    remove_leftovers(bindir)
    base = Path(tempfile.mkdtemp(prefix=f"posbench-pg-{os.getpid()}-"))
    data, log = base / "data", base / "server.log"
    if os.geteuid() == 0:
        user = pwd.getpwnam(SUPERUSER)
        os.chown(base, user.pw_uid, user.pw_gid)
    started = False
    try:
        _run([str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
              "--locale=C", "--no-sync", "--no-instructions"], cwd=base)
        # no TCP at all (listen_addresses empty), socket in our private directory; durability off
        # for speed: the data directory is thrown away afterwards
        options = (f"-c listen_addresses='' -c unix_socket_directories='{base}' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=40")
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", str(START_TIMEOUT_S),
              "-o", options, "start"], cwd=base, timeout=START_TIMEOUT_S + 10)
        started = True
        yield str(base)
    finally:
        if started:
            _stop(bindir, data, base)
        shutil.rmtree(base, ignore_errors=True)


def _stop(bindir: Path, data: Path, base: Path) -> None:
    try:
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", str(STOP_TIMEOUT_S), "stop"],
             cwd=base, timeout=STOP_TIMEOUT_S + 10)
        return
    except (RuntimeError, subprocess.TimeoutExpired):
        pass
    # pg_ctl could not stop it in time: kill the postmaster named in its pid file
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)
    except (OSError, ValueError, IndexError):
        pass


def remove_leftovers(bindir: Path) -> None:
    """Stop and remove servers of earlier test sessions whose process no longer exists."""
    for base in Path(tempfile.gettempdir()).glob("posbench-pg-*-*"):
        try:
            owner = int(base.name.split("-")[2])
        except (IndexError, ValueError):
            continue
        if owner == os.getpid() or Path(f"/proc/{owner}").exists():
            continue
        if (base / "data" / "postmaster.pid").exists():
            _stop(bindir, base / "data", base)
        shutil.rmtree(base, ignore_errors=True)


def create_database(socket_dir: str, name: str) -> str:
    """Create database ``name``; returns its SQLAlchemy URL (psycopg 3 over the unix socket)."""
    import psycopg
    with psycopg.connect(host=socket_dir, user=SUPERUSER, dbname="postgres", autocommit=True,
                         connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://{SUPERUSER}@/{name}?host={socket_dir}"
