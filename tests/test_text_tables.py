"""Plain-text tables: padded columns, numbers right-aligned, no trailing spaces."""

from __future__ import annotations

from sepframework.text_tables import aligned


def test_columns_are_padded_to_their_widest_cell_and_numbers_right_aligned() -> None:
    rows = [["source", "SDR", "note"], ["vocals", "10.25", ""], ["accompaniment", "9.1", "x"]]
    assert aligned(rows) == ["source         SDR    note", "vocals         10.25", "accompaniment  9.1    x"]
    assert aligned(rows, right_from=1) == ["source           SDR  note", "vocals         10.25",
                                           "accompaniment    9.1     x"]
