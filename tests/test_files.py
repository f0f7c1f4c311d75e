"""Atomic file writes: the old content or the new one, never a half-written file or a leftover."""

from __future__ import annotations

from pathlib import Path

import pytest

from sepframework.files import atomic_path, output_folder, write_text_atomically
from sepframework.interfaces import SeparationError


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "index.json"
    write_text_atomically(target, "old ✓\n")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text(encoding="utf-8") == "old ✓\n"
    assert [path.name for path in tmp_path.iterdir()] == ["index.json"]


def test_a_write_creates_the_folder_and_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "new" / "folder" / "scores.csv"
    write_text_atomically(target, "a")
    write_text_atomically(target, "b")
    assert target.read_text() == "b"
    assert [path.name for path in target.parent.iterdir()] == ["scores.csv"]


def test_written_files_get_the_permissions_of_any_new_file(tmp_path: Path) -> None:
    plain, atomic = tmp_path / "plain.txt", tmp_path / "atomic.txt"
    plain.write_text("x")
    write_text_atomically(atomic, "x")
    assert atomic.stat().st_mode == plain.stat().st_mode


def test_output_folders_made_for_a_block_that_fails_are_removed_unless_written_to(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), output_folder(tmp_path / "a" / "b"):
        assert (tmp_path / "a" / "b").is_dir()
        raise RuntimeError("failed before writing")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError), output_folder(tmp_path / "a" / "b") as folder:
        (folder / "log.jsonl").write_text("kept")
        raise RuntimeError("failed after writing")
    assert (tmp_path / "a" / "b" / "log.jsonl").read_text() == "kept"
    (tmp_path / "file").write_text("")
    with pytest.raises(SeparationError, match=r"^output folder .*file is a file, not a folder$"), output_folder(tmp_path / "file"):
        pass
    (tmp_path / "file-link").symlink_to(tmp_path / "file")
    with pytest.raises(SeparationError, match=r"^output folder .*file-link is a file, not a folder$"), \
            output_folder(tmp_path / "file-link"):
        pass
    (tmp_path / "link").symlink_to(tmp_path / "moved")
    with pytest.raises(SeparationError, match=r"^output folder .*link is a link to nothing, not a folder$"), \
            output_folder(tmp_path / "link"):
        pass
