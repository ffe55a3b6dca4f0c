"""The Sudoku engine (puzzles.py: grids, solver, canonical forms, generator) and the table puzzles are kept in
(tables.py: ArrowDataset, where the datasets library is not installed); it imports nothing else from lib.

The supported grids and their box shapes (rows, cols) live here, so the schema (lib/config.py) reads them
without loading the numba kernels."""
BOX_SHAPES = {4: (2, 2), 6: (2, 3), 9: (3, 3)}
SIZES = tuple(BOX_SHAPES)
