"""Sudoku grids of size 4, 6 and 9: parsing, validation, solving, rating, symmetries, canonical forms
and generation, all through the same code.

Representation
--------------
A grid is a numpy uint8 array of shape (N, N) with 0 for a blank and 1..N for a digit; a batch is
(B, N, N). Boxes are r x c (rows x columns): 2x2 for N=4, 2x3 for N=6, 3x3 for N=9, so a grid has
N/r *bands* of r rows and N/c *stacks* of c columns. Strings are N*N characters, row-major, with '.'
(or '0' on input) for a blank, as in sudoku-extreme. Inside the numba kernels a grid is flat (N*N,)
and a cell's candidates are a bitmask (bit d-1 set = digit d still possible).

Solver
------
Depth-first search over bitmasks. After every assignment, propagation applies naked singles (a cell
with one candidate) and hidden singles (a digit with one place left in a row, column or box) until
neither applies. When stuck, the search branches on a cell with the fewest candidates (among bivalue
cells, the one with the most unplaced peers; otherwise the first in row-major order) and tries its
candidates in increasing digit order.

A *guess* is a tentative assignment at a choice point while other untried candidates remain for that
cell. The last remaining candidate of a choice point is not a guess: by then every other value has
been refuted, so it is forced. A cell with k candidates therefore costs at most k-1 guesses, a
bivalue cell whose first value is right costs 1, and a puzzle that propagation alone solves costs 0.

Ratings (`rate`)
----------------
- `guesses`: guesses made until the first solution is found. This is the same idea as the tdoku
  rating in sudoku-extreme's `rating` column, but our per-puzzle numbers do NOT match tdoku's: tdoku
  propagates more than singles (its triad representation also captures box-line interactions) and
  branches differently. Ours are larger (benchmark means: 17-clue ~3 vs 0.4, forum-hardest ~55 vs 34)
  and only loosely correlated per puzzle (r ~ 0.3).
- `guesses_full`: guesses until the search is exhausted while counting solutions up to 2 (or stops at
  the second solution). Unlike `guesses` it does not depend on being lucky with the first branch, so
  it is more stable across isomorphic puzzles.
- `deduction_depth`: rounds of single propagation needed without guessing. Each round finds every
  naked and hidden single available in the current candidate state and places them all at once
  (candidates start as "not a given digit of a peer"). A complete grid has depth 0, a grid with one
  blank depth 1. `NEEDS_GUESS` (99) when singles alone get stuck (or the puzzle has no solution).

Symmetries and canonical form
-----------------------------
The validity-preserving symmetries are: permutations of bands, of rows within each band, of stacks,
of columns within each stack, and (square boxes only: N=4, 9) transposition, combined with digit
relabelling. `canonical(grid)` relabels digits by order of first appearance (row-major) and returns
the lexicographically smallest string over the whole group, where a blank sorts AFTER every digit
(so the canonical form starts with the fullest row, which lets branch-and-bound prune early). The
branch-and-bound builds the string row by row: for each row it only tries the source rows whose row
string is the smallest possible, and it orders columns lazily (columns blank in every row so far stay
an unordered set), so it branches only on real ties. Tested against brute force over the whole group
for 4x4 and 6x6. About 0.1-0.5 ms per 9x9 puzzle; a complete 9x9 grid is the worst case (~30 ms),
since every digit of its first row ties.

Generation
----------
A random full grid (randomised search), then clues removed in random order, keeping a clue whenever
its removal breaks uniqueness, until minimal or `min_clues` remain. Hard puzzles are hill-climbed (see
`generate`). Every puzzle has its own seed and our own splitmix64 generator, so results do not depend
on the number of workers.

Speed
-----
The hot paths are numba kernels compiled with cache=True: the first use in a fresh checkout compiles
for ~20 CPU-seconds, later processes load the cache. Batch functions run chunks in threads (the
kernels release the GIL), one per core by default.
"""
from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np
from numba import njit
from tqdm.auto import tqdm

from lib.sudoku import BOX_SHAPES, SIZES

NEEDS_GUESS = 99
_INF = 255  # "no best string yet" in the canonical search

# bitmask lookup tables (N <= 9, so masks fit in 9 bits)
_POP = np.array([bin(m).count("1") for m in range(512)], dtype=np.int64)
_DIGIT = np.array([(m & -m).bit_length() for m in range(512)], dtype=np.int64)  # lowest digit in a mask


class PuzzleError(ValueError):
    """Bad puzzle input; the message names the source, the row (when known) and what is wrong."""


@dataclass(frozen=True)
class Solution:
    grid: np.ndarray | None  # the first solution found (N, N) uint8, None if there is none
    n_solutions: int  # 0, 1 or 2 (2 means "at least 2")
    guesses: int  # guesses until the first solution (until exhaustion when there is none)


@dataclass(frozen=True)
class Rating:
    guesses: int
    guesses_full: int
    deduction_depth: int


def box_shape(n: int) -> tuple[int, int]:
    """Box shape (rows, cols) of an N x N grid."""
    if n not in SIZES:
        raise PuzzleError(f"unsupported grid size {n!r}; choose one of {SIZES}")
    return BOX_SHAPES[n]


@functools.lru_cache(maxsize=None)
def _tables(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(peers (C, P), units (3N, N), cell_units (C,)) int64: each cell's peers, the cells of the rows,
    columns and boxes, and each cell's units as a bitmask."""
    r, c = box_shape(n)
    rows = [[i * n + j for j in range(n)] for i in range(n)]
    cols = [[i * n + j for i in range(n)] for j in range(n)]
    boxes = []
    for b in range(n):
        top, left = (b // (n // c)) * r, (b % (n // c)) * c
        boxes.append([(top + i) * n + left + j for i in range(r) for j in range(c)])
    units = rows + cols + boxes
    peers = []
    for cell in range(n * n):
        ps = set()
        for u in units:
            if cell in u:
                ps.update(u)
        ps.discard(cell)
        peers.append(sorted(ps))
    cell_units = [sum(1 << u for u, unit in enumerate(units) if cell in unit) for cell in range(n * n)]
    return np.array(peers, dtype=np.int64), np.array(units, dtype=np.int64), np.array(cell_units, dtype=np.int64)



def units(n: int) -> np.ndarray:
    """(3N, N) flat cell indices of every row, column and box: the groups a valid grid fills with 1..N."""
    return _tables(n)[1]

# --- parsing, formatting, validation ------------------------------------------------------------

def _where(source: str, row) -> str:
    return source if row is None else f"{source}, row {row}"


def _size_from_length(length: int, size, where: str) -> int:
    if size is not None:
        box_shape(size)
        if length != size * size:
            raise PuzzleError(f"{where}: wrong length {length}, expected {size * size} characters for a {size}x{size} grid")
        return size
    for n in SIZES:
        if length == n * n:
            return n
    raise PuzzleError(f"{where}: wrong length {length}, expected 16, 36 or 81 characters (4x4, 6x6 or 9x9)")


def _unit_name(n: int, u: int) -> str:
    r, c = box_shape(n)
    if u < n:
        return f"grid row {u + 1}"
    if u < 2 * n:
        return f"column {u - n + 1}"
    b = u - 2 * n
    top, left = (b // (n // c)) * r, (b % (n // c)) * c
    return f"box {b + 1} (rows {top + 1}-{top + r}, columns {left + 1}-{left + c})"


def check(grid: np.ndarray, source: str = "<grid>", row=None) -> None:
    """Raise PuzzleError if the givens contradict each other (a digit twice in a row, column or box)."""
    g = _as_grid(grid, source, row).reshape(-1)
    n = int(round(len(g) ** 0.5))
    units = _tables(n)[1]
    for u in range(3 * n):
        vals = g[units[u]]
        vals = vals[vals > 0]
        counts = np.bincount(vals, minlength=n + 1)
        if counts.max(initial=0) > 1:
            d = int(np.argmax(counts))
            raise PuzzleError(f"{_where(source, row)}: digit {d} appears {counts[d]} times in {_unit_name(n, u)}")


def parse(text: str, size: int | None = None, source: str = "<string>", row=None) -> np.ndarray:
    """N*N characters ('.' or '0' blank, '1'..'N' digits; surrounding whitespace ignored) -> (N, N) uint8.
    The size is inferred from the length (16, 36, 81) unless given."""
    where = _where(source, row)
    if not isinstance(text, str):
        raise PuzzleError(f"{where}: expected a string, got {type(text).__name__}")
    s = text.strip()
    n = _size_from_length(len(s), size, where)
    codes = np.frombuffer(s.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
    vals = codes - ord("0")
    vals[codes == ord(".")] = 0
    bad = (vals < 0) | (vals > n)
    if bad.any():
        i = int(np.argmax(bad))
        raise PuzzleError(f"{where}: illegal character {s[i]!r} at index {i} (grid row {i // n + 1}, column {i % n + 1}); "
                          f"a {n}x{n} grid takes '.' or '0' for a blank and digits 1-{n}")
    grid = vals.astype(np.uint8).reshape(n, n)
    check(grid, source, row)
    return grid


def parse_many(texts, size: int | None = None, source: str = "<strings>", row_offset: int = 0) -> np.ndarray:
    """Parse a sequence of strings of one size into (B, N, N) uint8 (fast path; errors name row i + row_offset)."""
    texts = list(texts)
    if not texts:
        return np.zeros((0, size or 9, size or 9), dtype=np.uint8)
    n = size or parse(texts[0], None, source, row_offset).shape[0]
    try:
        joined = "".join(t.strip() for t in texts).encode("ascii")
        ok = len(joined) == len(texts) * n * n
    except (UnicodeEncodeError, AttributeError):
        ok = False
    if ok:
        codes = np.frombuffer(joined, dtype=np.uint8).reshape(len(texts), n * n).astype(np.int64)
        vals = codes - ord("0")
        vals[codes == ord(".")] = 0
        ok = bool(((vals >= 0) & (vals <= n)).all()) and all(len(t.strip()) == n * n for t in texts)
    if ok:
        grids = vals.astype(np.uint8)
        good = np.ones(len(grids), np.bool_)
        _chunked(_consistent_chunk, len(grids), (grids, _tables(n)[1], n), (good,), chunk=8192)
        if good.all():
            return grids.reshape(-1, n, n)
    # slow path: parse each string so the first error gets a precise message
    return np.stack([parse(t, n, source, i + row_offset) for i, t in enumerate(texts)])


def format(grid: np.ndarray) -> str:  # noqa: A001 - the contract's name
    """(N, N) or flat grid -> N*N characters, '.' for blanks."""
    return bytes(_CHARS[_as_grid(grid, "format").reshape(-1)]).decode("ascii")


def format_many(grids: np.ndarray) -> list[str]:
    """(B, N, N) or (B, N*N) -> list of strings."""
    g, _ = _as_batch(grids, "format_many")
    raw = bytes(_CHARS[g].reshape(-1))
    k = g.shape[1]
    return [raw[i * k:(i + 1) * k].decode("ascii") for i in range(len(g))]


_CHARS = np.frombuffer(b".123456789", dtype=np.uint8)


def _as_grid(grid, source: str = "<grid>", row=None) -> np.ndarray:
    """Validate an (N, N) or flat N*N grid (or a string) and return it as (N, N) uint8."""
    if isinstance(grid, str):
        return parse(grid, source=source, row=row)
    a = np.asarray(grid)
    where = _where(source, row)
    if a.dtype.kind not in "iub":
        raise PuzzleError(f"{where}: grid must hold integers, got dtype {a.dtype}")
    n = a.shape[0] if a.ndim == 2 else int(round(a.size ** 0.5))
    if not ((a.ndim == 2 and a.shape == (n, n)) or (a.ndim == 1 and a.size == n * n)) or n not in SIZES:
        raise PuzzleError(f"{where}: grid shape {a.shape} is not (N, N) or (N*N,) with N in 4, 6, 9")
    if a.size and (a.min() < 0 or a.max() > n):
        raise PuzzleError(f"{where}: grid values must be 0 (blank) to {n}, got {a.min()}..{a.max()}")
    return a.astype(np.uint8).reshape(n, n)


def _as_batch(grids, source: str = "<grids>") -> tuple[np.ndarray, int]:
    """Validate a batch ((B, N, N), (B, N*N) or a list of strings/grids) -> (flat (B, C) uint8, N)."""
    if isinstance(grids, (list, tuple)):
        if grids and isinstance(grids[0], str):
            grids = parse_many(grids, source=source)
        elif grids:
            grids = np.stack([_as_grid(g, source, i) for i, g in enumerate(grids)])
        else:
            raise PuzzleError(f"{source}: empty batch")
    a = np.asarray(grids)
    if a.dtype.kind not in "iub":
        raise PuzzleError(f"{source}: grids must hold integers, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[1] == a.shape[2]:
        n = a.shape[1]
    elif a.ndim == 2:
        n = int(round(a.shape[1] ** 0.5))
        if n * n != a.shape[1]:
            n = -1
    else:
        n = -1
    if n not in SIZES:
        raise PuzzleError(f"{source}: batch shape {a.shape} is not (B, N, N) or (B, N*N) with N in 4, 6, 9")
    if a.size and (a.min() < 0 or a.max() > n):
        raise PuzzleError(f"{source}: grid values must be 0 (blank) to {n}, got {a.min()}..{a.max()}")
    return np.ascontiguousarray(a.reshape(len(a), n * n), dtype=np.uint8), n


# --- numba kernels: propagation and search ------------------------------------------------------
# A "tables" tuple T = (peers (C, P), units (3N, N), cell_units (C,) bitmask of the 3 units of a cell).

@njit(cache=True, inline='always')
def _init(grid, n, cands, val):
    """Candidates from the givens (single-candidate cells are queued by `_search`)."""
    full = (1 << n) - 1
    for i in range(n * n):
        val[i] = 0
        d = grid[i]
        cands[i] = (1 << (d - 1)) if d else full


@njit(cache=True, inline='always')
def _propagate(cands, val, queue, qlen, nleft, dirty, T, n):
    """Place queued singles and every naked/hidden single they expose. `dirty` marks the units whose
    candidates changed since they were last scanned for hidden singles. Returns the number of cells
    left (0 = solved), or -1 on a contradiction."""
    peers, units, cell_units = T
    full = (1 << n) - 1
    while True:
        while qlen > 0:
            qlen -= 1
            cell = queue[qlen]
            if val[cell]:
                continue
            m = cands[cell]
            val[cell] = _DIGIT[m]
            nleft -= 1
            for k in range(peers.shape[1]):
                p = peers[cell, k]
                pm = cands[p]
                if pm & m:
                    pm ^= m
                    if pm == 0:
                        return -1
                    cands[p] = pm
                    dirty |= cell_units[p]
                    if pm & (pm - 1) == 0:
                        queue[qlen] = p
                        qlen += 1
        if nleft == 0:
            return 0
        if dirty == 0:
            return nleft
        scan = dirty
        dirty = 0
        for u in range(units.shape[0]):
            if not (scan >> u) & 1:
                continue
            once = 0
            twice = 0
            done = 0
            for k in range(n):
                cell = units[u, k]
                m = cands[cell]
                twice |= once & m
                once |= m
                if val[cell]:
                    done |= m
            if once != full:
                return -1
            hidden = once & ~twice & ~done
            while hidden:
                b = hidden & -hidden
                hidden ^= b
                for k in range(n):
                    cell = units[u, k]
                    if cands[cell] & b:
                        cands[cell] = b
                        dirty |= cell_units[cell]
                        queue[qlen] = cell
                        qlen += 1
                        break


@njit(cache=True, inline='always')
def _choose(cands, val, size, peers):
    """The cell to branch on: the bivalue cell with the most unplaced peers (its guess propagates
    furthest; this cut guesses by a third on hard puzzles versus the first bivalue cell), else the
    first cell with the fewest candidates. Ties go to the first cell in row-major order."""
    fewest = 99
    for i in range(size):
        if val[i] == 0 and _POP[cands[i]] < fewest:
            fewest = _POP[cands[i]]
    best = -1
    most = -1
    for i in range(size):
        if val[i] == 0 and _POP[cands[i]] == fewest:
            if fewest != 2:
                return i
            degree = 0
            for k in range(peers.shape[1]):
                if val[peers[i, k]] == 0:
                    degree += 1
            if degree > most:
                most = degree
                best = i
    return best


@njit(cache=True, inline='always')
def _rand(rng):
    """splitmix64 step on rng[0]; returns a uint64 (our own generator, so results never depend on threads)."""
    x = rng[0] + np.uint64(0x9E3779B97F4A7C15)
    rng[0] = x
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True, inline='always')
def _randint(rng, k):
    return np.int64(_rand(rng) % np.uint64(k))


@njit(cache=True, inline='always')
def _pick(m, rng, randomize):
    """The candidate bit to try next: the lowest digit, or a random one."""
    if not randomize:
        return m & -m
    j = _randint(rng, _POP[m])
    while j > 0:
        m &= m - 1
        j -= 1
    return m & -m


@njit(cache=True)
def _workspace(n):
    size = n * n
    return (np.empty(size, np.int32), np.empty(size, np.uint8), np.empty(size + n, np.int64),
            np.empty((size + 1, size), np.int32), np.empty((size + 1, size), np.uint8),
            np.empty(size + 1, np.int64), np.empty(size + 1, np.int64), np.empty(size + 1, np.int64),
            np.zeros((2, size), np.uint8))


@njit(cache=True)
def _search(ws, T, n, limit, rng, randomize):
    """DFS from the candidates in ws[0] (nothing placed yet). Stores up to 2 solutions in ws[8].
    Returns (solutions found capped at limit, guesses until the first one, guesses in total)."""
    cands, val, queue, st_c, st_v, st_cell, st_rem, st_left, sols = ws
    cell_units = T[2]
    size = n * n
    nleft = size
    qlen = 0
    for i in range(size):
        if cands[i] & (cands[i] - 1) == 0:
            queue[qlen] = i
            qlen += 1
    dirty = (1 << (3 * n)) - 1
    nsol = 0
    guesses = 0
    first = -1
    depth = 0
    while True:
        nleft = _propagate(cands, val, queue, qlen, nleft, dirty, T, n)
        if nleft == 0:
            if nsol < 2:
                sols[nsol, :] = val
            if nsol == 0:
                first = guesses
            nsol += 1
            if nsol >= limit:
                break
        elif nleft > 0:  # stuck: branch on a cell with the fewest candidates
            cell = _choose(cands, val, size, T[0])
            m = cands[cell]
            b = _pick(m, rng, randomize)
            st_c[depth, :] = cands
            st_v[depth, :] = val
            st_cell[depth] = cell
            st_rem[depth] = m ^ b
            st_left[depth] = nleft
            depth += 1
            guesses += 1
            cands[cell] = b
            queue[0] = cell
            qlen = 1
            dirty = cell_units[cell]
            continue
        # backtrack to the latest choice point with an untried candidate
        if depth == 0:
            break
        depth -= 1
        cands[:] = st_c[depth]
        val[:] = st_v[depth]
        nleft = st_left[depth]
        cell = st_cell[depth]
        rem = st_rem[depth]
        b = _pick(rem, rng, randomize)
        if rem != b:  # others remain: a guess, keep the choice point
            st_rem[depth] = rem ^ b
            depth += 1
            guesses += 1
        cands[cell] = b  # the last candidate is forced, not a guess
        queue[0] = cell
        qlen = 1
        dirty = cell_units[cell]
    if first < 0:
        first = guesses
    return nsol, first, guesses


@njit(cache=True)
def _deduction_depth(grid, n, T, cands, val, newv):
    """Rounds of simultaneous naked+hidden singles to fill the grid; NEEDS_GUESS if they get stuck."""
    peers, units, _ = T
    size = n * n
    full = (1 << n) - 1
    nleft = 0
    for i in range(size):
        val[i] = grid[i]
        cands[i] = full
        if grid[i] == 0:
            nleft += 1
    for i in range(size):
        if val[i]:
            b = 1 << (val[i] - 1)
            for k in range(peers.shape[1]):
                p = peers[i, k]
                if val[p] == val[i]:
                    return NEEDS_GUESS
                cands[p] &= ~b
    depth = 0
    while nleft > 0:
        nnew = 0
        for i in range(size):
            newv[i] = 0
            if val[i] == 0:
                m = cands[i]
                if m == 0:
                    return NEEDS_GUESS
                if m & (m - 1) == 0:
                    newv[i] = _DIGIT[m]
                    nnew += 1
        for u in range(units.shape[0]):
            once = 0
            twice = 0
            done = 0
            for k in range(n):
                cell = units[u, k]
                if val[cell]:
                    done |= 1 << (val[cell] - 1)
                else:
                    m = cands[cell]
                    twice |= once & m
                    once |= m
            if (once | done) != full:
                return NEEDS_GUESS
            # The hidden-single scan of _propagate, kept inline on purpose (a deliberate duplicate): here
            # a round's findings are collected into newv instead of applied at once, and a shared numba
            # helper would need both behaviours behind a flag in the innermost loop.
            hidden = once & ~twice & ~done
            while hidden:
                b = hidden & -hidden
                hidden ^= b
                for k in range(n):
                    cell = units[u, k]
                    if val[cell] == 0 and cands[cell] & b:
                        if newv[cell] == 0:
                            newv[cell] = _DIGIT[b]
                            nnew += 1
                        elif newv[cell] != _DIGIT[b]:
                            return NEEDS_GUESS
                        break
        if nnew == 0:
            return NEEDS_GUESS
        for i in range(size):
            if newv[i]:
                d = newv[i]
                val[i] = d
                nleft -= 1
                for k in range(peers.shape[1]):
                    p = peers[i, k]
                    if val[p] == d:
                        return NEEDS_GUESS
                    cands[p] &= ~(1 << (d - 1))
        depth += 1
    return depth


@njit(cache=True, nogil=True)
def _solve_chunk(grids, n, T, limit, want_depth, sols, nsol, first, total, depth):
    ws = _workspace(n)
    newv = np.empty(n * n, np.int64)
    rng = np.zeros(1, np.uint64)
    for i in range(grids.shape[0]):
        _init(grids[i], n, ws[0], ws[1])
        k, f, t = _search(ws, T, n, limit, rng, False)
        nsol[i] = k
        first[i] = f
        total[i] = t
        if k > 0:
            sols[i, :] = ws[8][0]
        if want_depth:
            depth[i] = _deduction_depth(grids[i], n, T, ws[0], ws[1], newv)


@njit(cache=True, nogil=True)
def _consistent_chunk(grids, units, n, out):
    for i in range(grids.shape[0]):
        out[i] = True
        for u in range(units.shape[0]):
            seen = 0
            for k in range(n):
                d = grids[i, units[u, k]]
                if d:
                    b = 1 << (d - 1)
                    if seen & b:
                        out[i] = False
                    seen |= b


def _workers(workers: int | None) -> int:
    return max(1, workers or len(os.sched_getaffinity(0)))


def _chunked(kernel, count: int, args, outs, workers=None, progress=False, desc="", chunk=1024):
    """Run kernel(*(a[s:e] for a in args-with-slices)) over chunks in threads (the kernels release the GIL).
    `args` entries that are numpy arrays with `count` rows are sliced; others are passed as they are."""
    def run(s, e):
        kernel(*[a[s:e] if isinstance(a, np.ndarray) and a.ndim and len(a) == count else a for a in args],
               *[o[s:e] for o in outs])
        return e - s
    w = _workers(workers)
    chunk = max(1, min(chunk, -(-count // (4 * w))))  # at least 4 chunks per worker when there is enough work
    bounds = [(s, min(count, s + chunk)) for s in range(0, count, chunk)]
    w = min(w, len(bounds))
    with tqdm(total=count, desc=desc, disable=not progress or count <= chunk) as bar:
        if w <= 1:
            for s, e in bounds:
                bar.update(run(s, e))
        else:
            with ThreadPoolExecutor(w) as ex:
                for f in as_completed([ex.submit(run, s, e) for s, e in bounds]):
                    bar.update(f.result())


# --- solving and rating: public API --------------------------------------------------------------

def _run(grids, source, limit, want_depth, progress, desc, workers=None):
    flat, n = _as_batch(grids, source)
    b = len(flat)
    sols = np.zeros((b, n * n), np.uint8)
    nsol, first, total, depth = (np.zeros(b, np.int64) for _ in range(4))
    _chunked(_solve_chunk, b, (flat, n, _tables(n), limit, want_depth), (sols, nsol, first, total, depth),
             workers, progress, desc)
    return n, sols, nsol, first, total, depth


def solve_many(grids, max_solutions: int = 2, progress: bool = False, workers: int | None = None):
    """Batch solve. Returns (solutions (B, N, N) uint8, zeros where unsolvable; n_solutions (B,) capped at
    max_solutions; guesses (B,) until the first solution). max_solutions=1 just finds one solution."""
    if max_solutions not in (1, 2):
        raise PuzzleError(f"max_solutions must be 1 or 2, got {max_solutions}")
    n, sols, nsol, first, _, _ = _run(grids, "solve_many", max_solutions, False, progress, "solve", workers)
    return sols.reshape(-1, n, n), nsol, first


def solve(grid, max_solutions: int = 2) -> Solution:
    """Solve one grid (array or string); counts solutions up to 2 unless max_solutions=1."""
    g = _as_grid(grid, "solve")
    sols, nsol, first = solve_many(g[None], max_solutions)
    return Solution(sols[0] if nsol[0] else None, int(nsol[0]), int(first[0]))


def rate_many(grids, progress: bool = True, workers: int | None = None) -> dict:
    """Batch ratings: dict(guesses=..., guesses_full=..., deduction_depth=...) of int64 arrays, plus
    n_solutions (so callers can check uniqueness for free)."""
    _, _, nsol, first, total, depth = _run(grids, "rate_many", 2, True, progress, "rate", workers)
    return dict(guesses=first, guesses_full=total, deduction_depth=depth, n_solutions=nsol)


def rate(grid) -> Rating:
    """Rating of one grid; see the module docstring for the definitions."""
    r = rate_many(_as_grid(grid, "rate")[None], progress=False)
    return Rating(int(r["guesses"][0]), int(r["guesses_full"][0]), int(r["deduction_depth"][0]))


# --- symmetries ----------------------------------------------------------------------------------

def _line_perm(n: int, group: int, rng: np.random.Generator) -> np.ndarray:
    """new line -> old line: shuffle the blocks of `group` lines, and the lines inside each block."""
    blocks = rng.permutation(n // group)
    return np.concatenate([b * group + rng.permutation(group) for b in blocks])


def random_symmetry(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random validity-preserving transform: (cell_perm int64[N*N], digit_perm int64[N+1]) with
    new_flat = digit_perm[old_flat[cell_perm]] and digit_perm[0] = 0."""
    r, c = box_shape(n)
    rows, cols = _line_perm(n, r, rng), _line_perm(n, c, rng)
    cell = rows[:, None] * n + cols[None, :]  # new (i, j) <- old (rows[i], cols[j])
    if r == c and rng.random() < 0.5:
        cell = cell.T
    digit = np.concatenate([[0], 1 + rng.permutation(n)]).astype(np.int64)
    return np.ascontiguousarray(cell.reshape(-1), dtype=np.int64), digit


# --- canonical form (branch and bound) -----------------------------------------------------------
# The search builds the canonical string cell by cell. Columns are ordered lazily: a column (or a whole
# stack) that has been blank in every row so far stays in an unordered "tie set", because any order of
# such columns gives the same string so far. Each string row first looks ahead: only source rows whose
# row string is the smallest possible are tried. So the search branches only on real ties: between such
# rows, and on which column goes next when several give the same smallest value (only possible for a
# digit that has no label yet). Anything whose prefix exceeds the best string so far is pruned. The DFS
# is iterative because numba cannot reload cached recursive functions (they segfault).

# frame fields
_P, _KIND, _I, _COL, _NEW, _LAB, _BLANK, _MASK = range(8)
_ROW, _POS = 0, 1
# scalar state fields
_NXT, _UROWS, _UCOLS, _USTACKS, _NSLOTS = range(5)


@njit(cache=True, inline='always')
def _lower(best, p, v):
    """best[p] = v, a new smallest prefix: everything after it is open again."""
    best[p] = v
    q = p + 1
    while q < best.shape[0] and best[q] != _INF:
        best[q] = _INF
        q += 1


@njit(cache=True, inline='always')
def _emit(best, p, v):
    """Compare value v at string position p with the best string; False if this branch is worse."""
    if v > best[p]:
        return False
    if v < best[p]:
        _lower(best, p, v)
    return True


@njit(cache=True, inline='always')
def _value(x, n, lab, nxt):
    """String value of digit x: its label, the next free label if it has none, N+1 for a blank."""
    if x == 0:
        return n + 1
    if lab[x]:
        return lab[x]
    return nxt + 1


@njit(cache=True, inline='always')
def _undo(F, d, S, n, c, lab, rowperm, nfix, slot_stack):
    """Take back what frame d's current option applied."""
    if F[d, _KIND] == _ROW:
        if F[d, _COL] >= 0:
            S[_UROWS] &= ~(1 << F[d, _COL])
    else:
        col = F[d, _COL]
        if col >= 0:
            s = (F[d, _P] % n) // c
            nfix[s] -= 1
            S[_UCOLS] &= ~(1 << col)
            if F[d, _NEW]:
                slot_stack[s] = -1
                S[_NSLOTS] -= 1
                S[_USTACKS] &= ~(1 << (col // c))
        if F[d, _LAB]:
            lab[F[d, _LAB]] = 0
            S[_NXT] -= 1
    F[d, _COL] = -1
    F[d, _NEW] = 0
    F[d, _LAB] = 0


@njit(cache=True, inline='always')
def _segment(h, row, n, c, st, used_cols, lab, seg):
    """Values of stack st's unplaced columns in `row`, in their best order: labelled digits ascending,
    then unlabelled digits (N+1 as a placeholder), then blanks (N+2). Returns how many."""
    m = 0
    for col in range(st * c, st * c + c):
        if (used_cols >> col) & 1:
            continue
        x = h[row * n + col]
        v = n + 2 if x == 0 else (lab[x] if lab[x] else n + 1)
        q = m
        while q > 0 and seg[q - 1] > v:
            seg[q] = seg[q - 1]
            q -= 1
        seg[q] = v
        m += 1
    return m


@njit(cache=True, inline='always')
def _row_values(h, row, n, c, S, lab, colperm, nfix, slot_stack, seg, bseg, out):
    """The smallest string `row` can give as the next string row under the current partial transform
    (how ties are broken later does not change it)."""
    nxt = S[_NXT]
    picked = S[_USTACKS]
    for s in range(n // c):
        base = s * c
        start = 0
        if s < S[_NSLOTS]:
            start = nfix[s]
            for o in range(start):
                x = h[row * n + colperm[base + o]]
                if x == 0:
                    out[base + o] = n + 1
                elif lab[x]:
                    out[base + o] = lab[x]
                else:
                    nxt += 1
                    out[base + o] = nxt
            m = _segment(h, row, n, c, slot_stack[s], S[_UCOLS], lab, bseg)
        else:  # an untouched slot takes the untouched stack with the smallest segment
            first = -1
            for st in range(n // c):
                if (picked >> st) & 1:
                    continue
                m = _segment(h, row, n, c, st, S[_UCOLS], lab, seg)
                smaller = first < 0
                for q in range(m):
                    if smaller or seg[q] != bseg[q]:
                        smaller = smaller or seg[q] < bseg[q]
                        break
                if smaller:
                    first = st
                    bseg[:m] = seg[:m]
            picked |= 1 << first
            m = c
        for q in range(m):
            v = bseg[q]
            if v == n + 1:
                nxt += 1
                v = nxt
            elif v == n + 2:
                v = n + 1
            out[base + start + q] = v


@njit(cache=True, inline='always')
def _try_row(F, d, S, h, n, r, c, best, lab, rowperm, colperm, nfix, slot_stack, blank_row, vals, vmin):
    """Next source row for string row k: only rows whose string row is the smallest possible, and no
    bigger than the best string's row k. Rows are numbered t*N + i over both orientations (t=1 is the
    transpose); rows 1.. stay in row 0's orientation, and in the band of row k-1 unless k starts a band."""
    k = F[d, _P] // n
    if F[d, _I] == 0:  # first visit: find the rows giving the smallest string row
        F[d, _I] = 1
        mask = 0
        vmin[:] = _INF
        for row in range(blank_row.shape[0]):
            if (S[_UROWS] >> row) & 1:
                continue
            band = row // r
            if k > 0:
                if row // n != rowperm[0] // n:
                    continue
                if k % r == 0:
                    if (S[_UROWS] >> (band * r)) & ((1 << r) - 1):
                        continue
                elif band != rowperm[k - 1] // r:
                    continue
            _row_values(h, row, n, c, S, lab, colperm, nfix, slot_stack, vals[0], vals[1], vals[2])
            cmp = 0
            for j in range(n):
                if vals[2, j] != vmin[j]:
                    cmp = -1 if vals[2, j] < vmin[j] else 1
                    break
            if cmp < 0:
                vmin[:] = vals[2]
                mask = 0
            if cmp <= 0:
                mask |= 1 << row
        for j in range(n):
            if vmin[j] != best[k * n + j]:
                if vmin[j] > best[k * n + j]:
                    mask = 0
                break
        F[d, _MASK] = mask
    while F[d, _MASK]:
        bit = F[d, _MASK] & -F[d, _MASK]
        F[d, _MASK] ^= bit
        row = _DIGIT[bit & 511] - 1 if bit < 512 else _DIGIT[bit >> 9] + 8
        if blank_row[row]:  # two blank rows of one band are interchangeable: try one
            band = row // r
            if (F[d, _BLANK] >> band) & 1:
                continue
            F[d, _BLANK] |= 1 << band
        rowperm[k] = row
        S[_UROWS] |= 1 << row
        F[d, _COL] = row
        return F[d, _P]
    return -1


@njit(cache=True, inline='always')
def _try_pos(F, d, S, h, n, c, best, lab, rowperm, colperm, nfix, slot_stack):
    """Next option for string position p; returns the next position, or -1 when out of options."""
    p = F[d, _P]
    k, j = p // n, p % n
    row = rowperm[k]
    s = j // c
    i = F[d, _I]
    F[d, _I] += 1
    if s < S[_NSLOTS] and j % c < nfix[s]:  # column already fixed
        x = h[row * n + colperm[j]]
        v = _value(x, n, lab, S[_NXT])
        if i > 0 or not _emit(best, p, v):
            return -1
        if x and lab[x] == 0:
            lab[x] = v
            S[_NXT] += 1
            F[d, _LAB] = x
        return p + 1
    # tie set: the unplaced columns of this slot's stack, or of all untouched stacks
    fixed_stack = s < S[_NSLOTS]
    end = (s + 1) * c if fixed_stack else n
    vmin = n + 1
    for col in range(n):
        if (S[_UCOLS] >> col) & 1:
            continue
        if (col // c != slot_stack[s]) if fixed_stack else (((S[_USTACKS] >> (col // c)) & 1) != 0):
            continue
        vmin = min(vmin, _value(h[row * n + col], n, lab, S[_NXT]))
    if vmin == n + 1:  # all blank in this row: the tie set stays, the rest of it is blank
        if i > 0:
            return -1
        for q in range(j, end):
            if not _emit(best, k * n + q, n + 1):
                return -1
        return k * n + end
    if not _emit(best, p, vmin):
        return -1
    seen = 0
    for col in range(n):  # the i-th column giving vmin (several only for unlabelled digits)
        if (S[_UCOLS] >> col) & 1:
            continue
        if (col // c != slot_stack[s]) if fixed_stack else (((S[_USTACKS] >> (col // c)) & 1) != 0):
            continue
        x = h[row * n + col]
        if _value(x, n, lab, S[_NXT]) != vmin:
            continue
        if seen < i:
            seen += 1
            continue
        colperm[j] = col
        S[_UCOLS] |= 1 << col
        F[d, _COL] = col
        if not fixed_stack:
            slot_stack[s] = col // c
            nfix[s] = 0
            S[_NSLOTS] += 1
            S[_USTACKS] |= 1 << (col // c)
            F[d, _NEW] = 1
        nfix[s] += 1
        if lab[x] == 0:
            lab[x] = vmin
            S[_NXT] += 1
            F[d, _LAB] = x
        return p + 1
    return -1


@njit(cache=True)
def _canonical(g, n, r, c, best):
    """Lexicographically smallest relabelled string (values 1..N, blank = N+1) over the symmetry group,
    written into best. Returns the number of search steps (for profiling)."""
    size = n * n
    nrows = 2 * n if r == c else n
    h = np.empty(2 * size, np.uint8)  # the grid, then its transpose: row t*N + i is row i of orientation t
    clues = np.zeros(nrows, np.int64)
    for i in range(n):
        for j in range(n):
            h[i * n + j] = g[i * n + j]
            h[size + i * n + j] = g[j * n + i]
    for i in range(nrows):
        for j in range(n):
            if h[i * n + j]:
                clues[i] += 1
    blank_row = clues == 0
    vals = np.zeros((3, n), np.int64)
    vmin = np.zeros(n, np.int64)
    F = np.zeros((size + n + 1, 8), np.int64)
    S = np.zeros(5, np.int64)
    lab = np.zeros(n + 1, np.int64)
    rowperm = np.zeros(n, np.int64)
    colperm = np.zeros(n, np.int64)
    nfix = np.zeros(n, np.int64)
    slot_stack = np.full(n, -1, np.int64)
    best[:] = _INF
    F[0, _KIND] = _ROW
    F[0, _COL] = -1
    d = 0
    steps = 0
    while d >= 0:
        steps += 1
        _undo(F, d, S, n, c, lab, rowperm, nfix, slot_stack)
        if F[d, _KIND] == _ROW:
            q = _try_row(F, d, S, h, n, r, c, best, lab, rowperm, colperm, nfix, slot_stack, blank_row, vals, vmin)
        else:
            q = _try_pos(F, d, S, h, n, c, best, lab, rowperm, colperm, nfix, slot_stack)
        if q < 0:
            d -= 1
        elif q < size:  # descend (a complete string needs nothing more: best already holds it)
            kind = _ROW if (F[d, _KIND] == _POS and q % n == 0) else _POS
            d += 1
            F[d, :] = 0
            F[d, _P] = q
            F[d, _KIND] = kind
            F[d, _COL] = -1
    return steps


@njit(cache=True, nogil=True)
def _canonical_chunk(grids, n, r, c, out):
    for i in range(grids.shape[0]):
        _canonical(grids[i], n, r, c, out[i])


_CANON_CHARS = np.frombuffer(b"0123456789.", dtype=np.uint8)


def canonical_many(grids, progress: bool = True, workers: int | None = None) -> list[str]:
    """Canonical strings of a batch (see `canonical`)."""
    flat, n = _as_batch(grids, "canonical_many")
    r, c = box_shape(n)
    out = np.zeros_like(flat)
    _chunked(_canonical_chunk, len(flat), (flat, n, r, c), (out,), workers, progress, "canonical", chunk=256)
    lut = _CANON_CHARS.copy()
    lut[n + 1] = ord(".")
    raw = bytes(lut[out].reshape(-1))
    k = n * n
    return [raw[i * k:(i + 1) * k].decode("ascii") for i in range(len(flat))]


def canonical(grid) -> str:
    """Canonical string of a grid under relabelling + all validity-preserving symmetries: digits are
    relabelled by first appearance and the smallest string wins, with '.' sorting after digits."""
    return canonical_many(_as_grid(grid, "canonical")[None], progress=False)[0]


# --- generation ----------------------------------------------------------------------------------
# The helpers are inlined into `_generate_chunk`: numba re-optimises a callee's code inside every caller
# that is compiled separately, so fewer separately compiled callers of `_search` keep compile time down.

@njit(cache=True, inline='always')
def _has_other(puzzle, cell, d, ws, T, n, rng):
    """Does the puzzle (with `cell` blank) have a solution with a digit other than d at `cell`?"""
    _init(puzzle, n, ws[0], ws[1])
    ws[0][cell] &= ~(1 << (d - 1))
    k, _, _ = _search(ws, T, n, 1, rng, False)
    return k > 0


@njit(cache=True, inline='always')
def _minimise(puzzle, min_clues, ws, T, n, rng):
    """Remove clues in random order, keeping any whose removal breaks uniqueness, down to min_clues."""
    size = n * n
    order = np.arange(size)
    for i in range(size - 1, 0, -1):
        j = _randint(rng, i + 1)
        order[i], order[j] = order[j], order[i]
    clues = 0
    for i in range(size):
        if puzzle[i]:
            clues += 1
    for cell in order:
        if clues <= min_clues:
            break
        d = puzzle[cell]
        if d == 0:
            continue
        puzzle[cell] = 0
        if _has_other(puzzle, cell, d, ws, T, n, rng):
            puzzle[cell] = d
        else:
            clues -= 1


@njit(cache=True, inline='always')
def _hardness(puzzle, ws, newv, T, n, rng):
    """Score to maximise in hill climbing: guesses_full for 9x9, deduction depth first for small grids."""
    _init(puzzle, n, ws[0], ws[1])
    _, _, total = _search(ws, T, n, 2, rng, False)
    if n == 9:
        return total
    return _deduction_depth(puzzle, n, T, ws[0], ws[1], newv) * 100000 + total


@njit(cache=True, inline='always')
def _complete_unique(puzzle, answer, min_clues, ws, T, n, rng):
    """Add clues from `answer` (a solution of puzzle): at random blanks up to min_clues, then where two
    solutions differ until the solution is unique."""
    size = n * n
    clues = 0
    for i in range(size):
        if puzzle[i]:
            clues += 1
    while clues < min_clues:
        i = _randint(rng, size)
        if puzzle[i] == 0:
            puzzle[i] = answer[i]
            clues += 1
    while True:
        _init(puzzle, n, ws[0], ws[1])
        k, _, _ = _search(ws, T, n, 2, rng, False)
        if k < 2:
            return
        sols = ws[8]
        ndiff = 0
        for i in range(size):
            if sols[0, i] != sols[1, i]:
                ndiff += 1
        j = _randint(rng, ndiff)
        for i in range(size):
            if sols[0, i] != sols[1, i]:
                if j == 0:
                    puzzle[i] = answer[i]
                    break
                j -= 1


@njit(cache=True, inline='always')
def _make_puzzle(seed, hard, n, T, min_clues, hard_steps, puzzle, answer):
    size = n * n
    rng = np.full(1, seed, np.uint64)
    ws = _workspace(n)
    newv = np.empty(size, np.int64)
    puzzle[:] = 0
    _init(puzzle, n, ws[0], ws[1])
    _search(ws, T, n, 1, rng, True)  # a random full grid
    answer[:] = ws[8][0]
    puzzle[:] = answer
    _minimise(puzzle, min_clues, ws, T, n, rng)
    if not hard:
        return
    score = _hardness(puzzle, ws, newv, T, n, rng)
    cand = np.empty(size, np.uint8)
    cand_answer = np.empty(size, np.uint8)
    for _ in range(hard_steps):
        cand[:] = puzzle
        drop = 1 + _randint(rng, 3)
        for _ in range(drop):  # blank a few random clues
            for _ in range(size):
                i = _randint(rng, size)
                if cand[i]:
                    cand[i] = 0
                    break
        _init(cand, n, ws[0], ws[1])
        _search(ws, T, n, 1, rng, True)  # a random solution becomes the new answer
        cand_answer[:] = ws[8][0]
        _complete_unique(cand, cand_answer, min_clues, ws, T, n, rng)
        _minimise(cand, min_clues, ws, T, n, rng)
        s = _hardness(cand, ws, newv, T, n, rng)
        if s >= score:  # ties are accepted so the search can drift across plateaus
            score = s
            puzzle[:] = cand
            answer[:] = cand_answer


@njit(cache=True, nogil=True)
def _generate_chunk(seeds, hard, n, T, min_clues, hard_steps, puzzles, answers):
    for i in range(seeds.shape[0]):
        _make_puzzle(seeds[i], hard[i], n, T, min_clues, hard_steps, puzzles[i], answers[i])


def generate(n: int, count: int, min_clues: int = 0, hard_fraction: float = 0.0, seed: int = 0,
             workers: int | None = None, progress: bool = True, hard_steps: int = 30):
    """Unique-solution puzzles: random full grids, clues removed in random order (a clue stays if removing
    it breaks uniqueness) until minimal, or until `min_clues` remain. A random `hard_fraction` of them is
    then hill-climbed for `hard_steps` steps (drop 1-3 clues, re-complete to a unique puzzle, minimise,
    keep if not easier). Each puzzle has its own seed, so results do not depend on `workers`.
    Returns (puzzles (count, N, N) uint8, answers (count, N, N) uint8)."""
    box_shape(n)
    if count < 0 or min_clues < 0 or not 0.0 <= hard_fraction <= 1.0:
        raise PuzzleError(f"generate: need count >= 0, min_clues >= 0, 0 <= hard_fraction <= 1; got "
                          f"count={count}, min_clues={min_clues}, hard_fraction={hard_fraction}")
    ss = np.random.SeedSequence([seed, n, min_clues])
    seeds = ss.generate_state(max(count, 1) * 2, dtype=np.uint64)[::2][:count].copy()
    hard = np.zeros(count, np.bool_)
    hard[np.random.default_rng(ss.spawn(1)[0]).permutation(count)[:round(hard_fraction * count)]] = True
    puzzles = np.zeros((count, n * n), np.uint8)
    answers = np.zeros((count, n * n), np.uint8)
    _chunked(_generate_chunk, count, (seeds, hard, n, _tables(n), min_clues, hard_steps), (puzzles, answers),
             workers, progress, f"generate {n}x{n}", chunk=64 if n == 9 else 256)
    return puzzles.reshape(count, n, n), answers.reshape(count, n, n)
