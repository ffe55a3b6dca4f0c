"""Helpers the tests share (pytest puts tests/ on sys.path)."""
import numpy as np

# Every column a loaded puzzle dataset has, in order: the sudoku-extreme schema plus the computed ratings.
DATASET_COLUMNS = ["source", "question", "answer", "rating", "guesses", "guesses_full", "deduction_depth", "grid_size"]


def apply_symmetry(grid: np.ndarray, cell_perm: np.ndarray, digit_perm: np.ndarray) -> np.ndarray:
    """Apply lib.sudoku.puzzles.random_symmetry's (cell_perm, digit_perm) to a grid or a batch (last axes (N, N) or
    (N*N,)); keeps the shape: new_flat = digit_perm[old_flat[cell_perm]]."""
    g = np.asarray(grid)
    size = len(cell_perm)
    flat = g.reshape(g.shape[:-2] + (size,)) if g.shape[-2:] == (len(digit_perm) - 1,) * 2 else g
    return digit_perm[flat[..., cell_perm]].astype(np.uint8).reshape(g.shape)
