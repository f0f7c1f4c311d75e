"""Plain-text tables for the terminal: columns padded to their widest cell."""

from __future__ import annotations

from collections.abc import Sequence


def aligned(rows: Sequence[Sequence[str]], right_from: int | None = None) -> list[str]:
    """One line per row, columns two spaces apart and padded to their widest cell: left-aligned,
    or right-aligned from column ``right_from`` on (numbers); no trailing spaces."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]

    def pad(column: int, cell: str) -> str:
        right = right_from is not None and column >= right_from
        return cell.rjust(widths[column]) if right else cell.ljust(widths[column])

    return ["  ".join(pad(column, cell) for column, cell in enumerate(row)).rstrip() for row in rows]
