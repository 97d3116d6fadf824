"""Atomic writes: a failed write leaves the previous output untouched."""

from __future__ import annotations

import os
import stat

import pytest

from speechbrain_eres2net.dataio.files import (
    atomic_folder,
    atomic_open,
    atomic_path,
    write_text_atomic,
)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_failed_file_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "scores.txt"
    write_text_atomic(target, "old\n")
    with pytest.raises(RuntimeError), atomic_open(target) as f:
        f.write("half of the new")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old\n"
    assert _leftovers(tmp_path) == []


def test_atomic_path_publishes_only_on_success(tmp_path):
    target = tmp_path / "model.onnx"
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise ValueError("checker rejected the graph")
    assert not target.exists() and _leftovers(tmp_path) == []
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"graph")
    assert target.read_bytes() == b"graph"


def test_written_files_and_folders_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
        with atomic_folder(tmp_path / "model") as tmp:
            (tmp / "f").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755


def test_atomic_folder_replaces_a_folder_only_when_complete(tmp_path):
    out = tmp_path / "model"
    with atomic_folder(out) as tmp:
        (tmp / "v1.ckpt").write_text("1")
    with pytest.raises(KeyError), atomic_folder(out) as tmp:
        (tmp / "v2.ckpt").write_text("2")
        raise KeyError("export failed")
    assert sorted(p.name for p in out.iterdir()) == ["v1.ckpt"]
    with atomic_folder(out) as tmp:
        (tmp / "v2.ckpt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["v2.ckpt"]
    assert _leftovers(tmp_path) == []
