"""Report outputs (verdict JSON, HTML, JUnit): checked before a run, written whole or not at all.

A report option must never remove or replace anything but a regular file: a target that exists
and is a device node, a FIFO, a directory or a socket is refused before the bench starts, and so
is a directory posbench cannot create files in. Each report is written to a temporary file
beside its target and renamed into place only when complete, so a crash or a full disk leaves
the previous file (or none), never half of one.
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from posbench.core.errors import BenchError, ConfigError

_KINDS = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO",
          stat.S_IFDIR: "a directory", stat.S_IFSOCK: "a socket", stat.S_IFLNK: "a symbolic link"}


class ReportWriteFailed(BenchError):
    """A report could not be written after the run (disk full, the directory gone)."""


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def check_target(path: Path, option: str) -> None:
    """Refuse (``ConfigError``, exit 3) a report target posbench must not or cannot write.

    Creates the target's directory if it is missing, and proves it writable by creating and
    removing an empty file in it (``os.access`` says yes to root on a read-only mount).
    """
    where = f"{option} {path}"
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ConfigError(where, "", f"cannot look at it: {exc.strerror or exc}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ConfigError(where, "", f"it is {_kind(st.st_mode)}; posbench writes only to "
                                     "regular files (name a file, e.g. reports/unit.json)")
    if st is not None and not os.access(path, os.W_OK):
        raise ConfigError(where, "", "the file exists and is not writable")
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(where, "", f"cannot write in {directory}: {exc.strerror or exc}") from None


def staging_path(path: Path) -> Path:
    """The temporary file a report is written to before it replaces ``path`` (same directory,
    so the rename is atomic; hidden, and named by this process)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def commit(staged: Path, path: Path, what: str) -> bool:
    """Rename a complete ``staged`` report onto ``path``; False if nothing was staged.

    ``ReportWriteFailed`` if the rename fails or the target has meanwhile become something
    other than a regular file (it is then left alone and the staged file removed).
    """
    if not staged.exists():
        return False
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            staged.unlink(missing_ok=True)
            raise ReportWriteFailed(what, f"writing {path}", f"it is now {_kind(st.st_mode)}; left alone")
    except FileNotFoundError:
        pass
    try:
        os.replace(staged, path)
    except OSError as exc:
        staged.unlink(missing_ok=True)
        raise ReportWriteFailed(what, f"writing {path}", exc.strerror or str(exc)) from None
    return True


def write_text(path: Path, text: str, what: str) -> None:
    """Write ``text`` to a staged file and rename it onto ``path`` (``ReportWriteFailed`` on
    any failure, with nothing half-written left behind)."""
    staged = staging_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staged.write_text(text, encoding="utf-8")
    except OSError as exc:
        discard(staged)
        raise ReportWriteFailed(what, f"writing {path}", exc.strerror or str(exc)) from None
    commit(staged, path, what)


def discard(*staged: Path) -> None:
    """Remove staged files that will not be committed (best effort)."""
    for item in staged:
        try:
            item.unlink(missing_ok=True)
        except OSError:
            pass
