"""Atomic writes: complete file or nothing, never a leftover temp file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tal.core.formats import atomic
from tal.core.formats.atomic import atomic_open, atomic_write_bytes, atomic_write_text


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_write_text_and_bytes(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "a.txt", "x\ny\n")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01\n")
    assert (tmp_path / "a.txt").read_bytes() == b"x\ny\n"  # no newline translation
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01\n"
    assert _leftovers(tmp_path) == []


def test_replaces_existing_file_and_creates_parents(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "dir" / "f.txt"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert _leftovers(target.parent) == []


def test_error_inside_block_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    with pytest.raises(RuntimeError), atomic_open(target) as f:
        f.write('{"half": ')
        raise RuntimeError("boom")
    assert not target.exists()
    assert _leftovers(tmp_path) == []


def test_error_keeps_previous_content(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("previous")
    with pytest.raises(RuntimeError), atomic_open(target) as f:
        f.write("partial")
        raise RuntimeError("boom")
    assert target.read_text() == "previous"
    assert _leftovers(tmp_path) == []


def test_failing_rename_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(tmp_path / "f.txt", "data")
    assert list(tmp_path.iterdir()) == []


def test_data_is_fsynced_before_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    atomic_write_text(tmp_path / "f.txt", "data")
    assert events[:2] == ["fsync", "replace"]
    if os.name == "posix":
        assert events[2:] == ["fsync"]  # the directory


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_permissions(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.txt"
    atomic_write_text(fresh, "a")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
    kept = tmp_path / "kept.txt"
    kept.write_text("a")
    kept.chmod(0o600)
    atomic_write_text(kept, "b")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_rejects_read_modes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"), atomic_open(tmp_path / "f", "r"):
        pass
