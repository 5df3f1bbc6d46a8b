"""The store's engine set-up: the URL checked (SQLite or PostgreSQL through psycopg 3), SQLite in
WAL mode with ``synchronous=FULL`` and ``BEGIN IMMEDIATE`` for writes, PostgreSQL with timeouts."""
from __future__ import annotations

import re
import shlex
import sqlite3
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from posbench.store import migrations
from posbench.store.errors import StoreUnavailable

BUSY_TIMEOUT_MS = 30_000
"""SQLite: how long a writer waits for another process's write lock, milliseconds."""
PG_CONNECT_TIMEOUT_S = 10
"""PostgreSQL: connect timeout, seconds."""
PG_STATEMENT_TIMEOUT_MS = 60_000
PG_LOCK_TIMEOUT_MS = 30_000


def parse_url(url: str) -> URL:
    """The store URL given, as SQLAlchemy's ``URL`` (``postgresql://`` gets psycopg 3); a URL
    that is not SQLite or PostgreSQL, or text that is no URL, is ``StoreUnavailable``."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        # the text is not a URL at all; show it without anything that looks like a password
        shown = re.sub(r":[^:@/]*@", ":***@", str(url))
        raise StoreUnavailable(shown, "opening", "not a SQLAlchemy URL: use sqlite:///FILE or "
                                                 "postgresql+psycopg://USER:PASSWORD@HOST/DB") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreUnavailable(parsed.render_as_string(hide_password=True), "opening",
                               "unsupported database: use sqlite:///FILE or postgresql+psycopg://...")
    return parsed


def make_engine(url: URL, safe: str) -> Engine:
    """The engine for ``url`` (``safe``: the URL as shown, password hidden), set up as the module says."""
    try:
        if url.get_backend_name() == "sqlite":
            return _sqlite_engine(url)
        return create_engine(url, pool_pre_ping=True, connect_args={
            "connect_timeout": PG_CONNECT_TIMEOUT_S, "application_name": "posbench",
            "options": f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS} -c lock_timeout={PG_LOCK_TIMEOUT_MS}"})
    except (NoSuchModuleError, ImportError, ArgumentError) as exc:
        raise StoreUnavailable(safe, "opening", f"no driver for this URL: {exc}") from None
    except OSError as exc:
        raise StoreUnavailable(safe, "creating its directory", str(exc)) from None


def _sqlite_engine(url: URL) -> Engine:
    memory = url.database in (None, "", ":memory:")
    if not memory and url.database is not None:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, poolclass=StaticPool if memory else None,
                           connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:
        # SQLAlchemy's documented recipe: let SQLAlchemy, not the sqlite3 module, say when a
        # transaction begins, so DDL (migrations) is transactional and writers take the lock first.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not memory:
            mode = cur.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"SQLite refused WAL journal mode (got {mode})")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that upgrades to a
        # write later can fail with SQLITE_BUSY at once instead of waiting busy_timeout
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(migrations.WRITE)
                             else "BEGIN")

    return engine


def hide_password(text: str, url: URL) -> str:
    return text.replace(url.password, "***") if url.password else text


CORRUPT = frozenset({"SQLITE_NOTADB", "SQLITE_CORRUPT"})
"""SQLite's errors for a file that is not (or no longer) a readable database."""


def corrupt_remedy(exc: BaseException, url: URL) -> str:
    """For a SQLite store file that is not a readable database: what to do, to append to the
    error ("" for any other failure). posbench never moves or rewrites it itself: the runs it
    holds may still be recovered, so the technician moves it aside (to a name not yet taken)
    and the next run starts a new store."""
    orig = getattr(exc, "orig", None) or exc
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") \
            or getattr(orig, "sqlite_errorname", "") not in CORRUPT:
        return ""
    path = Path(url.database)
    n, aside = 0, path.with_name(path.name + ".corrupt")
    while aside.exists() or aside.with_name(aside.name + "-wal").exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt.{n}")
    moves = [f"mv {shlex.quote(str(p))} {shlex.quote(str(aside) + p.name[len(path.name):])}"
             for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
             if p == path or p.exists()]
    return (f"; the store file is damaged: move it aside to keep its runs and start a new store "
            f"({' && '.join(moves)}); `sqlite3 {shlex.quote(str(aside))} .recover` may rescue them")
