"""Writing files atomically: readers, crashes and Ctrl-C never see a half-written file."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sepframework.interfaces import SeparationError


#: Longest file name (bytes) of common file systems (ext4, APFS, NTFS in UTF-16 units).
NAME_MAX = 255


def temporary_sibling(path: Path) -> tuple[Path, int]:
    """Create an empty file under a unique hidden name beside ``path``, to write ``path``
    under until it is complete; returns its path and a descriptor open for writing. The
    name is ``.<name>.<hex>.part``, ``name`` shortened where the whole would be too long a
    file name; the file gets the permissions of any new file (the umask's), not
    ``mkstemp``'s private ones."""
    suffix = f".{secrets.token_hex(4)}.part"
    # A character cut in two at the end is dropped: some file systems take UTF-8 names only.
    name = os.fsencode(path.name)[: NAME_MAX - 1 - len(suffix)].decode("utf-8", "ignore")
    temporary = path.with_name(f".{name}{suffix}")
    return temporary, os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (its folder created) for the block to write; it
    replaces ``path`` when the block succeeds and is removed when the block fails (see
    :func:`temporary_sibling`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary, descriptor = temporary_sibling(path)
    os.close(descriptor)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, synced to disk before it takes the name."""
    with atomic_path(path) as temporary, temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, synced to disk before it takes the name."""
    write_bytes_atomically(path, text.encode("utf-8"))


@contextmanager
def output_folder(path: Path) -> Iterator[Path]:
    """Create the output folder ``path`` (and its parents) for the block, or say why it
    cannot be; the folders created here are removed again if the block fails before
    writing anything into them."""
    created = [folder for folder in (path, *path.parents) if not folder.exists()]  # deepest first
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        what = "a link to nothing" if path.is_symlink() and not path.exists() else "a file"
        raise SeparationError(f"output folder {path} is {what}, not a folder") from None
    except OSError as error:
        raise SeparationError(f"output folder {path} cannot be created ({error.strerror or error})") from None
    try:
        yield path
    except BaseException:
        with suppress(OSError):  # stops at a folder that is not empty: it holds what the block wrote
            for folder in created:
                folder.rmdir()
        raise
