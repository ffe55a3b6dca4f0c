"""A stand-in for `datasets.Dataset` where the datasets library is not installed (a GPU image
with only the numeric stack): the part of its API the workbook uses, over one pyarrow Table.

lib.data returns a datasets.Dataset where that library is installed and an ArrowDataset elsewhere.
Both read the same cached Arrow files, so a run sees the same puzzles in the same order either way
(tests/test_gpu_image.py trains with the library blocked and compares).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa


class ArrowDataset:
    """Rows of a pyarrow Table: length, column names, columns as lists, rows, select, Arrow."""

    def __init__(self, table: pa.Table):
        self.table = table

    @classmethod
    def from_file(cls, path: str) -> "ArrowDataset":
        """An Arrow stream file, memory-mapped (as datasets.Dataset.from_file reads it)."""
        with pa.memory_map(str(path)) as source:
            return cls(pa.ipc.open_stream(source).read_all())

    @classmethod
    def from_pandas(cls, frame, preserve_index: bool = False) -> "ArrowDataset":
        return cls(pa.Table.from_pandas(frame, preserve_index=preserve_index))

    def __len__(self) -> int:
        return self.table.num_rows

    num_rows = property(__len__)

    @property
    def column_names(self) -> list[str]:
        return self.table.column_names

    def __getitem__(self, key):
        """A column name gives its values as a list, a row number the row as a dict, and a slice
        a dict of lists (as datasets.Dataset)."""
        if isinstance(key, str):
            if key not in self.table.column_names:
                raise KeyError(f"no column {key!r}; columns: {', '.join(self.column_names)}")
            return self.table.column(key).to_pylist()
        if isinstance(key, slice):
            return self.table.slice(*_bounds(key, len(self))).to_pydict()
        if isinstance(key, (int, np.integer)):
            row = int(key) + len(self) if key < 0 else int(key)
            if not 0 <= row < len(self):
                raise IndexError(f"row {key} of {len(self)}")
            return {k: v[0] for k, v in self.table.slice(row, 1).to_pydict().items()}
        raise TypeError(f"an ArrowDataset takes a column name, a row or a slice, "
                        f"not {type(key).__name__}")

    def select(self, indices) -> "ArrowDataset":
        return ArrowDataset(self.table.take(pa.array(np.asarray(indices, dtype=np.int64))))

    def with_format(self, kind: str) -> "_ArrowView":
        if kind != "arrow":
            raise ValueError(f"ArrowDataset.with_format: only 'arrow' is supported, not {kind!r}")
        return _ArrowView(self.table)

    def to_pandas(self):
        return self.table.to_pandas()

    def __repr__(self) -> str:
        return f"ArrowDataset(rows={len(self)}, columns={self.column_names})"


class _ArrowView:
    """with_format("arrow"): a column as a ChunkedArray, a slice as a Table."""

    def __init__(self, table: pa.Table):
        self.table = table

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.table.column(key)
        if isinstance(key, slice):
            return self.table.slice(*_bounds(key, self.table.num_rows))
        raise TypeError(f"the Arrow view takes a column name or a slice, not {type(key).__name__}")


def _bounds(key: slice, n: int) -> tuple[int, int]:
    start, stop, step = key.indices(n)
    if step != 1:
        raise ValueError("an ArrowDataset slice takes no step")
    return start, max(0, stop - start)
