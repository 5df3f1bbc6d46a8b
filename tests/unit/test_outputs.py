"""Report targets: only regular files are ever replaced, and a report lands whole or not at all."""
from __future__ import annotations

import os
import stat

import pytest

from posbench.core.errors import ConfigError
from posbench.render.outputs import ReportWriteFailed, check_target, commit, staging_path, write_text


def test_a_missing_file_in_a_new_directory_is_fine(tmp_path):
    target = tmp_path / "new" / "dir" / "run.json"
    check_target(target, "--json")
    assert target.parent.is_dir() and not target.exists()
    assert list(target.parent.iterdir()) == [], "the write probe was left behind"


def test_an_existing_regular_file_may_be_replaced(tmp_path):
    target = tmp_path / "run.json"
    target.write_text("old")
    check_target(target, "--json")
    write_text(target, "new", "verdict JSON")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


@pytest.mark.parametrize("make,kind", [
    (lambda p: os.mkfifo(p), "a FIFO"),
    (lambda p: p.mkdir(), "a directory"),
    (lambda p: p.symlink_to("/dev/null"), "a symbolic link"),
])
def test_anything_but_a_regular_file_is_refused(tmp_path, make, kind):
    target = tmp_path / "target"
    make(target)
    before = os.lstat(target)
    with pytest.raises(ConfigError, match=f"--json {target}: it is {kind}"):
        check_target(target, "--json")
    after = os.lstat(target)
    assert (before.st_mode, before.st_ino) == (after.st_mode, after.st_ino)


def test_a_device_node_is_refused_and_left_alone(tmp_path):
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root and must make a device node")
        pytest.skip("mknod of a character device needs root")
    node = tmp_path / "full"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # like /dev/full, in our own temp dir
    with pytest.raises(ConfigError, match="it is a character device"):
        check_target(node, "--json")
    staged = staging_path(node)
    staged.write_text("{}")
    with pytest.raises(ReportWriteFailed, match="it is now a character device; left alone"):
        commit(staged, node, "verdict JSON")
    st = os.lstat(node)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 7)
    assert not staged.exists()


def test_an_unwritable_directory_is_refused(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into a mode-0555 directory (the e2e test uses a read-only mount)")
    directory = tmp_path / "ro"
    directory.mkdir(mode=0o555)
    try:
        with pytest.raises(ConfigError, match="cannot write in"):
            check_target(directory / "run.html", "--html")
    finally:
        directory.chmod(0o755)


def test_a_failed_write_leaves_the_old_file_and_no_staged_one(tmp_path, monkeypatch):
    target = tmp_path / "run.json"
    target.write_text("old")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(ReportWriteFailed, match="No space left on device"):
        write_text(target, "new", "verdict JSON")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_nothing_staged_commits_nothing(tmp_path):
    assert commit(staging_path(tmp_path / "a.xml"), tmp_path / "a.xml", "JUnit report") is False
    assert not (tmp_path / "a.xml").exists()
