"""Puzzle datasets: every experiment starts from a `datasets.Dataset` of rated puzzles (a
lib.sudoku.tables.ArrowDataset where the datasets library is not installed: only the hub needs it).

All sources end in the sudoku-extreme schema (source, question, answer, rating) plus computed
columns (guesses, guesses_full, deduction_depth, grid_size), so notebooks can mix and compare them:

    load_puzzles("sudoku-extreme", split="test")          # the hub dataset (or local CSVs, see below)
    load_puzzles("generated", grid_size=6, count=5000)    # no download needed; the default source
    load_puzzles("path/to/file.csv")                      # sudoku-extreme schema or Kaggle quizzes,solutions
    load_puzzles("path/to/puzzles.txt")                   # one puzzle per line, answers computed
    splits = load_splits(make_config("cpu-quick").data)   # train/test, test sampled per bucket

Every load is validated (answers must fit their givens and be solutions) and cached on disk under
CACHE_DIR as memory-mapped Arrow files, so rating a large file or generating a pool happens once.
"""
from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import functools
import hashlib
import inspect
import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from lib import files
from lib.sudoku import puzzles
from lib.config import SIZES, DataConfig, bucket_labels
from lib.provenance import ast_hash
from lib.sudoku.puzzles import PuzzleError

if TYPE_CHECKING:  # imported where the hub is read: a GPU image without it loads the rest
    import datasets

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
CACHE_DIR = Path(os.environ.get("SUDOKU_WORKBOOK_CACHE") or REPO / ".cache")
# Cached files are keyed by the code that makes them (the syntax of the generator, rater and splits), so a
# changed generator can never serve stale puzzles; a comment or docstring edit keeps the cache.
CACHE_CODE = ast_hash(("sudoku/__init__.py", "sudoku/puzzles.py", "data.py"))
HUB_ID = "sapientinc/sudoku-extreme"
EXTREME_DIR_ENV = "SUDOKU_EXTREME_DIR"  # a folder with the hub's train.csv and test.csv
KAGGLE_CSV_ENV = "SUDOKU_KAGGLE_CSV"  # data.source="kaggle": a Kaggle quizzes,solutions CSV
NOT_RATED = -1  # an extra rating column not computed (yet) for a row: see _rated_table
# 99,389 public 9x9 puzzles with tdoku ratings in the sudoku-extreme schema (shared/ sits beside the repo)
BENCHMARK_CSV = Path(os.environ.get("SUDOKU_BENCHMARK_CSV") or REPO.parent / "shared/data/external/benchmark_sets.csv")

HUB_COLUMNS = ("source", "question", "answer", "rating")

SIZE_OF_CELLS = {n * n: n for n in SIZES}
_CHUNK = 200_000  # rows per step of the vectorised checks, to bound memory on multi-million-row sources

# byte -> cell value; 255 marks a character that is not a cell
_DECODE = np.full(256, 255, np.uint8)
_DECODE[ord(".")] = _DECODE[ord("0")] = 0
for _d in range(1, 10):
    _DECODE[ord(str(_d))] = _d
_ENCODE = np.frombuffer(b".123456789", np.uint8)


class HubUnavailableError(ConnectionError):
    """The hub could not be reached and the dataset is not in the local datasets cache."""


# --- strings <-> cell arrays -------------------------------------------------------------------

def _row(i: int) -> str:
    return f"row {i}"


def _csv_line(i: int) -> str:
    return f"line {i + 2}"  # the header is line 1


def _cells(strings: pa.Array | pa.ChunkedArray, where: str, name: Callable[[int], str] = _row) -> np.ndarray:
    """Decode equal-length cell strings straight from Arrow's byte buffer: (B, N*N) uint8.

    Going through the buffer instead of Python strings keeps multi-million-row sources fast;
    any bad row raises PuzzleError naming `where` and the row.
    """
    arr = strings.combine_chunks() if isinstance(strings, pa.ChunkedArray) else strings
    if len(arr) == 0:
        raise PuzzleError(f"{where}: no puzzles")
    if arr.null_count:
        i = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        raise PuzzleError(f"{where} {name(i)}: missing puzzle string")
    lengths = pc.binary_length(arr).to_numpy(zero_copy_only=False)
    width = int(lengths[0])
    if width not in SIZE_OF_CELLS:
        raise PuzzleError(f"{where} {name(0)}: {width} characters; a puzzle has 16, 36 or 81 (4x4, 6x6, 9x9)")
    bad = np.flatnonzero(lengths != width)
    if len(bad):
        i = int(bad[0])
        raise PuzzleError(f"{where} {name(i)}: {lengths[i]} characters, expected {width} like the first row "
                          f"({len(bad)} such rows)")
    large = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    offsets = np.frombuffer(arr.buffers()[1], np.int64 if large else np.int32)[arr.offset:arr.offset + len(arr) + 1]
    chars = np.frombuffer(arr.buffers()[2], np.uint8)[offsets[0]:offsets[-1]].reshape(len(arr), width)
    cells = _DECODE[chars]
    n = SIZE_OF_CELLS[width]
    bad = np.flatnonzero((cells > n).any(axis=1))
    if len(bad):
        i = int(bad[0])
        raise PuzzleError(f"{where} {name(i)}: {arr[i].as_py()!r} has a character other than '.', '0' or 1-{n} "
                          f"({len(bad)} such rows)")
    return cells


def _strings(cells: np.ndarray) -> pa.Array:
    """(B, N*N) cell values -> Arrow strings with '.' blanks, built from one buffer."""
    b, width = cells.shape
    data = _ENCODE[cells].tobytes()
    offsets = np.arange(0, b * width + 1, width, dtype=np.int32 if b * width < 2**31 else np.int64)
    typ = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    return pa.Array.from_buffers(typ, b, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def to_arrays(ds: datasets.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(puzzles, answers) as flat uint8 (B, N*N) arrays for the training loop (0 = blank)."""
    if len(ds) == 0:
        return np.zeros((0, 0), np.uint8), np.zeros((0, 0), np.uint8)
    return _cells(_column(ds, "question"), "question"), _cells(_column(ds, "answer"), "answer")


def _column(ds: datasets.Dataset, name: str) -> pa.ChunkedArray:
    """One column as Arrow, honouring a select/shuffle/filter index mapping.

    Taking through the mapping directly is ~10x faster than datasets' own formatting path
    (0.05 s vs 0.5 s per 100K rows); the public path is the fallback should the internals change.
    """
    try:
        column = ds.data.table.column(name)
        return column if ds._indices is None else column.take(ds._indices.column(0))
    except AttributeError:
        return ds.with_format("arrow")[name]


def bucket_of(values, edges: list[int]) -> np.ndarray:
    """Bucket label per value (config.bucket_labels naming); "" for values below edges[0]."""
    names = np.array(bucket_labels(list(edges)) + [""])  # index -1 (below the first edge) picks ""
    return names[np.searchsorted(np.asarray(edges), np.asarray(values), side="right") - 1]


# --- validation and rating ---------------------------------------------------------------------

def _check_answers(q: np.ndarray, a: np.ndarray, where: str, name: Callable[[int], str] = _row) -> None:
    """Answers must be complete, keep every given and hold each digit once per unit.

    Training on a wrong answer silently teaches the model wrong Sudoku, so any mismatch is an error.
    """
    if a.shape[1] != q.shape[1]:  # every row of a column has one width (_cells), so the first row says it
        raise PuzzleError(f"{where} {name(0)}: the answer has {a.shape[1]} cells, the puzzle {q.shape[1]} "
                          "(answers of another grid size)")
    n = SIZE_OF_CELLS[q.shape[1]]
    units, full = puzzles.units(n), (1 << (n + 1)) - 2  # bits 1..N set
    for start in range(0, len(q), _CHUNK):
        qs, a_s = q[start:start + _CHUNK], a[start:start + _CHUNK]
        bits = np.left_shift(np.uint16(1), a_s.astype(np.uint16))
        checks = [
            ((a_s > 0).all(axis=1), "the answer has blanks"),
            (((qs == 0) | (qs == a_s)).all(axis=1), "the answer does not match the puzzle's givens"),
            ((np.bitwise_or.reduce(bits[:, units], axis=2) == full).all(axis=1),
             "the answer is not a valid solution (a digit repeats in a row, column or box)"),
        ]
        for ok, problem in checks:
            bad = np.flatnonzero(~ok)
            if len(bad):
                raise PuzzleError(f"{where} {name(start + int(bad[0]))}: {problem} ({len(bad)} such rows in this block)")


def _rated_table(source, q: np.ndarray, a: np.ndarray, rating, where: str,
                 name: Callable[[int], str] = _row, progress: bool = True) -> pa.Table:
    """Validate, rate and assemble the full schema.

    `rating` is the source's own rating when it ships one (kept as is); otherwise the computed
    guess count, so the `rating` column is always filled. A source that ships ratings is not
    rated here: its extra columns (guesses, guesses_full, deduction_depth) hold NOT_RATED until
    `with_extra_ratings` fills them for the rows a run uses (the test split, or every row when a
    run buckets by them), which keeps preparing a multi-million-row train split cheap.
    """
    _check_answers(q, a, where, name)
    n = SIZE_OF_CELLS[q.shape[1]]
    b = len(q)
    r = _ratings(q, progress) if rating is None else {k: np.full(b, NOT_RATED) for k in EXTRA_RATINGS}
    several = np.flatnonzero(np.asarray(r.get("n_solutions", np.ones(b))) > 1)
    if len(several):  # kept: the source ships an answer, but a model can't be blamed for finding another
        log.warning("%s: %d puzzle(s) have several solutions (%s%s)", where, len(several),
                    ", ".join(name(int(i)) for i in several[:5]), ", ..." if len(several) > 5 else "")
    if isinstance(source, str):
        source = pa.repeat(pa.scalar(source), b)
    return pa.table({
        "source": source,
        "question": _strings(q),
        "answer": _strings(a),
        "rating": pa.array(np.asarray(r["guesses"] if rating is None else rating, dtype=np.int64)),
        "guesses": pa.array(np.asarray(r["guesses"], dtype=np.int64)),
        "guesses_full": pa.array(np.asarray(r["guesses_full"], dtype=np.int64)),
        "deduction_depth": pa.array(np.asarray(r["deduction_depth"], dtype=np.int64)),
        "grid_size": pa.repeat(pa.scalar(n, pa.int64()), b),
    })


EXTRA_RATINGS = ("guesses", "guesses_full", "deduction_depth")


def _ratings(q: np.ndarray, progress: bool) -> dict:
    n = SIZE_OF_CELLS[q.shape[1]]
    return puzzles.rate_many(q.reshape(-1, n, n), progress=progress)


def with_extra_ratings(t: pa.Table, progress: bool = True) -> pa.Table:
    """`t` with the NOT_RATED rows of its extra rating columns computed."""
    todo = np.flatnonzero(t["deduction_depth"].to_numpy() == NOT_RATED)
    if not len(todo):
        return t
    r = _ratings(_cells(t["question"].take(pa.array(todo)), "rows to rate"), progress)
    for column in EXTRA_RATINGS:
        values = t[column].to_numpy().copy()
        values[todo] = np.asarray(r[column], dtype=np.int64)
        t = t.set_column(t.schema.get_field_index(column), column, pa.array(values))
    return t


# --- on-disk cache -----------------------------------------------------------------------------

def _digest(key: dict, code: str = CACHE_CODE) -> str:
    text = json.dumps({"code": code, **key}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _file_id(path: str | Path) -> dict:
    """Identity of a file for cache keys: a changed file gets a new key."""
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_arrow(table: pa.Table, path: Path) -> None:
    """An Arrow stream file, written atomically: readers never see half a file."""
    def write(tmp: Path) -> None:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)

    files.atomic_write(path, write)


@functools.lru_cache(maxsize=1)
def dataset_class() -> type:
    """datasets.Dataset where that library is installed, else lib.sudoku.tables.ArrowDataset, its stand-in
    over the same Arrow files: only loading from the hub needs the library."""
    try:
        import datasets
        return datasets.Dataset
    except ImportError:
        from lib.sudoku.tables import ArrowDataset
        return ArrowDataset


def _hub_features():
    import datasets
    string, integer = datasets.Value("string"), datasets.Value("int64")
    # Declared, not inferred: pandas would read an all-digit answer column as (overflowing) ints.
    return datasets.Features(source=string, question=string, answer=string, rating=integer)


def _read_arrow(path: Path) -> datasets.Dataset:
    return dataset_class().from_file(str(path))  # memory-mapped: cheap even for millions of rows


def _cached(kind: str, key: dict, build: Callable[[], pa.Table]) -> datasets.Dataset:
    path = CACHE_DIR / "puzzles" / f"{kind}-{_digest(key)}.arrow"
    if path.exists():
        log.info("puzzle cache hit: %s", path)
    else:
        _write_arrow(build(), path)
    return _read_arrow(path)


def _table(ds: datasets.Dataset) -> pa.Table:
    return ds.with_format("arrow")[:]


@contextlib.contextmanager
def _hub_progress(progress: bool):
    """Silence the datasets library's own bars when progress=False."""
    import datasets
    was_disabled = datasets.are_progress_bars_disabled()
    if not progress:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


# --- sources -----------------------------------------------------------------------------------

def load_puzzles(source: str, **options) -> datasets.Dataset:
    """Load a rated puzzle dataset from "sudoku-extreme", "generated" or a file path.

    Options per source:
      "sudoku-extreme": split="train"|"test", data_dir=None (a folder with the hub's train.csv,
          test.csv), data_files=None (a path, list or {split: path}), progress=True.
          Without data_dir/data_files, $SUDOKU_EXTREME_DIR is used if set, else the hub (and its cache).
      "generated": grid_size=9, count=1000, min_clues=0, hard_fraction=0.0, seed=0, workers=None, progress=True.
      a path: progress=True. CSV with question,answer[,source][,rating] (sudoku-extreme schema),
          Kaggle CSV with quizzes,solutions, or text with one puzzle per line.
    """
    loader = {"sudoku-extreme": _load_extreme, "generated": _load_generated}.get(source, _load_file)
    if loader is _load_file:
        options = {"path": source, **options}
    valid = inspect.signature(loader).parameters
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TypeError(f"load_puzzles({source!r}): unknown option(s) {', '.join(unknown)}; "
                        f"valid: {', '.join(k for k in valid if k != 'path')}")
    return loader(**options)


def _offline_message(split: str) -> str:
    return (f"could not load {HUB_ID!r} (split {split!r}): the hub is unreachable and the dataset is not in the "
            f"local datasets cache. Download the hub's train.csv and test.csv (header source,question,answer,rating) "
            f"into a folder and either pass it, load_puzzles('sudoku-extreme', data_dir='that/folder'), or set "
            f"{EXTREME_DIR_ENV}=that/folder (used by load_splits too). Set HF_HUB_OFFLINE=1 to skip the network retries.")


def _load_extreme_raw(split: str, data_dir, data_files, progress: bool) -> datasets.Dataset:
    """The hub dataset, or local files in the hub's format through the same datasets CSV builder."""
    try:
        import datasets
        from datasets.exceptions import DatasetNotFoundError
    except ImportError as e:
        raise ImportError(f"sudoku-extreme from the hub needs the datasets library (pip install "
                          f"datasets); without it, set {EXTREME_DIR_ENV} to a folder with the "
                          f"hub's train.csv and test.csv") from e
    features = _hub_features()
    with _hub_progress(progress):
        if data_files is not None:
            files = data_files if isinstance(data_files, dict) else {split: data_files}
            return datasets.load_dataset("csv", data_files=files, split=split, features=features)
        if data_dir is not None:
            if not (Path(data_dir) / f"{split}.csv").exists():
                raise FileNotFoundError(f"{data_dir}: no {split}.csv; a sudoku-extreme folder holds the hub's "
                                        f"train.csv and test.csv")
            # A local folder resolves splits from file names exactly like the hub repo does.
            return datasets.load_dataset(str(data_dir), split=split, features=features)
        try:
            return datasets.load_dataset(HUB_ID, split=split, features=features)
        except (ConnectionError, DatasetNotFoundError) as e:  # offline, unreachable, or no such repo reachable
            raise HubUnavailableError(_offline_message(split)) from e


def _load_extreme(split: str = "train", data_dir=None, data_files=None, progress: bool = True) -> datasets.Dataset:
    if split not in ("train", "test"):
        raise ValueError(f"sudoku-extreme has splits 'train' and 'test', not {split!r}")
    if data_dir is None and data_files is None:
        data_dir = os.environ.get(EXTREME_DIR_ENV) or None
    without_library = dataset_class().__module__ == "lib.sudoku.tables"
    if data_dir is not None and data_files is None and without_library:
        return _load_extreme_folder(Path(data_dir), split, progress)
    raw = _load_extreme_raw(split, data_dir, data_files, progress)
    where = f"{HUB_ID}[{split}]"
    missing = [c for c in HUB_COLUMNS if c not in raw.column_names]
    if missing:
        raise PuzzleError(f"{where}: missing column(s) {', '.join(missing)}; have {', '.join(raw.column_names)}")

    def build() -> pa.Table:
        t = _table(raw)
        q, a = _cells(t["question"], where), _cells(t["answer"], where)
        return _rated_table(t["source"].combine_chunks(), q, a, t["rating"].to_numpy(), where, progress=progress)

    # The datasets fingerprint identifies the raw data (hub revision or local files), so it keys our ratings.
    return _cached("extreme", {"fingerprint": raw._fingerprint, "split": split}, build)


def _load_extreme_folder(folder: Path, split: str, progress: bool) -> datasets.Dataset:
    """A folder of the hub's CSVs read without the datasets library (a GPU image with only the
    numeric stack): the rows its CSV builder reads, in order, cached under the file's identity."""
    path = folder / f"{split}.csv"
    if not path.exists():
        raise FileNotFoundError(f"{folder}: no {split}.csv; a sudoku-extreme folder holds the "
                                f"hub's train.csv and test.csv")
    where = f"{HUB_ID}[{split}]"

    def build() -> pa.Table:
        t = _read_csv(path)
        missing = [c for c in HUB_COLUMNS if c not in t.column_names]
        if missing:
            raise PuzzleError(f"{where}: missing column(s) {', '.join(missing)}; have "
                              f"{', '.join(t.column_names)}")
        q, a = _cells(t["question"], where), _cells(t["answer"], where)
        source, rating = t["source"].combine_chunks(), t["rating"].to_numpy()
        return _rated_table(source, q, a, rating, where, progress=progress)

    return _cached("extreme", {"file": _file_id(path), "split": split}, build)


def _load_generated(grid_size: int = 9, count: int = 1000, min_clues: int = 0, hard_fraction: float = 0.0,
                    seed: int = 0, workers: int | None = None, progress: bool = True) -> datasets.Dataset:
    """Fresh unique-solution puzzles from puzzles.generate; rating = guesses. Needs no download."""
    if grid_size not in SIZE_OF_CELLS.values():
        raise ValueError(f"generated: grid_size {grid_size} is not supported; choose one of {SIZES}")
    if count <= 0:
        raise ValueError(f"generated: count must be positive, got {count}")
    # workers is not part of the key: generation is reproducible from the seed alone.
    key = {"grid_size": grid_size, "count": count, "min_clues": min_clues, "hard_fraction": hard_fraction, "seed": seed}
    name = f"generated-{grid_size}x{grid_size}"

    def build() -> pa.Table:
        q, a = puzzles.generate(grid_size, count, min_clues=min_clues, hard_fraction=hard_fraction, seed=seed,
                                workers=workers, progress=progress)
        q, a = np.asarray(q, np.uint8).reshape(count, -1), np.asarray(a, np.uint8).reshape(count, -1)
        return _rated_table(name, q, a, None, name, progress=progress)

    return _cached("generated", key, build)


def _load_file(path, progress: bool = True) -> datasets.Dataset:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"puzzle source {str(path)!r} is not a file; sources are 'sudoku-extreme', "
                                f"'generated' or a path to a CSV or text file")
    _check_utf8(path)
    with open(path, encoding="utf-8-sig") as f:
        first = next((line for line in f if line.strip() and not line.lstrip().startswith("#")), "")
    build = _build_csv if "," in first else _build_text  # a CSV header always has a comma, a puzzle never
    return _cached("file", _file_id(path), lambda: build(path, progress))


def _check_utf8(path: Path, chunk: int = 1 << 24) -> None:
    """A PuzzleError naming the line of the first byte that is not UTF-8 (read in chunks: files may be big)."""
    decoder, line = codecs.getincrementaldecoder("utf-8")(), 1
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as e:
                where = line + block[:e.start].count(b"\n")
                raise PuzzleError(f"{path} line {where}: not UTF-8 text (byte 0x{block[e.start]:02x})") from None
            if not block:
                return
            line += block.count(b"\n")


def _first_bad_csv_line(path: Path) -> str:
    """pyarrow's CSV errors don't say where; find the first row with a wrong field count."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        try:
            header = next(rows, [])
            for row in rows:
                if row and len(row) != len(header):
                    return f" (line {rows.line_num}: {len(row)} fields, the header has {len(header)})"
        except csv.Error as e:
            return f" (line {rows.line_num}: {e})"
    return ""


def _read_csv(path: Path) -> pa.Table:
    strings = {c: pa.string() for c in ("source", "question", "answer", "quizzes", "solutions")}
    try:
        t = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={**strings, "rating": pa.int64()}))
    except pa.ArrowInvalid as e:
        raise PuzzleError(f"{path}: {e}{_first_bad_csv_line(path)}") from None
    repeated = sorted({c for c in t.column_names if t.column_names.count(c) > 1})
    if repeated:
        raise PuzzleError(f"{path} line 1: the header repeats column(s) {', '.join(repeated)}")
    return t


def _build_csv(path: Path, progress: bool) -> pa.Table:
    """sudoku-extreme schema keeps its source and rating; Kaggle's quizzes,solutions get computed ratings."""
    t = _read_csv(path)
    where = str(path)
    if {"question", "answer"} <= set(t.column_names):
        source = t["source"].combine_chunks() if "source" in t.column_names else path.name
        rating = t["rating"].to_numpy() if "rating" in t.column_names else None
        q, a = _cells(t["question"], where, _csv_line), _cells(t["answer"], where, _csv_line)
    elif {"quizzes", "solutions"} <= set(t.column_names):
        source, rating = path.name, None
        q, a = _cells(t["quizzes"], where, _csv_line), _cells(t["solutions"], where, _csv_line)
    else:
        raise PuzzleError(f"{path}: unknown CSV columns {', '.join(t.column_names)}; expected "
                          f"source,question,answer,rating (sudoku-extreme) or quizzes,solutions (Kaggle)")
    if rating is not None and t["rating"].null_count:
        i = int(np.flatnonzero(t["rating"].is_null().to_numpy(zero_copy_only=False))[0])
        raise PuzzleError(f"{path} {_csv_line(i)}: missing rating")
    return _rated_table(source, q, a, rating, where, _csv_line, progress)


# A puzzle as a text field: 16, 36 or 81 cells of '.', '0' or a digit.
_PUZZLE_FIELD = re.compile(r"[.0-9]{16}|[.0-9]{36}|[.0-9]{81}")
_FORMATS = "CSV (source,question,answer,rating or quizzes,solutions) or text with one puzzle per line"


def _puzzle_field(fields: list[str]) -> str:
    """The field of a text line that is its puzzle: one puzzle per line may carry other columns (an id before
    it, a rating after it, as in the sudoku-exchange puzzle bank). A lone field is the puzzle, right or wrong
    (its length or characters are reported by _cells)."""
    return next((f for f in fields if _PUZZLE_FIELD.fullmatch(f)), fields[0] if len(fields) == 1 else "")


def _other_format(path: Path, lines: list[tuple[int, str]]) -> str:
    """A sentence naming a common puzzle format that is not one puzzle per line, or ""."""
    first = lines[0][1].lstrip()
    if first.startswith(("{", "[")):
        return f"{path}: looks like JSON; the loader reads {_FORMATS}"
    rows = [re.sub(r"[\s|+-]", "", text) for _, text in lines[:9]]
    for n in (9, 6, 4):
        if len(rows) >= n and all(len(r) == n and set(r) <= set(".0123456789") for r in rows[:n]):
            return (f"{path} line {lines[0][0]}: looks like one {n}x{n} grid written over {n} lines (as in .sdk "
                    f"files); write each puzzle on one line of {n * n} cells; the loader reads {_FORMATS}")
    return ""


def _build_text(path: Path, progress: bool) -> pa.Table:
    """One puzzle per line ('.' or '0' blanks; '#' starts a comment; other fields on the line, such as an id
    or a rating, are ignored).

    Answers are computed. Puzzles with no or several solutions are reported and excluded:
    they have no single answer to train on.
    """
    with open(path, encoding="utf-8-sig") as f:  # -sig: a byte-order mark is not part of the first puzzle
        text_lines = [(number, line.split("#", 1)[0]) for number, line in enumerate(f, 1)]
    text_lines = [(number, text) for number, text in text_lines if text.split()]
    if text_lines and (other := _other_format(path, text_lines)):
        raise PuzzleError(other)
    lines, numbers = [], []
    for number, text in text_lines:
        fields = text.split()
        puzzle = _puzzle_field(fields)
        if not puzzle:
            raise PuzzleError(f"{path} line {number}: none of its {len(fields)} fields is a puzzle (16, 36 or 81 "
                              f"cells of '.', '0' or digits): {' '.join(fields)[:60]!r}; the loader reads {_FORMATS}")
        lines.append(puzzle)
        numbers.append(number)
    if not lines:
        raise PuzzleError(f"{path}: no puzzles")
    q = _cells(pa.array(lines, pa.string()), str(path), lambda i: f"line {numbers[i]}")
    n = SIZE_OF_CELLS[q.shape[1]]
    solutions, n_solutions, _ = puzzles.solve_many(q.reshape(-1, n, n), progress=progress)
    n_solutions = np.asarray(n_solutions)
    for count, problem in ((0, "no solution"), (2, "several solutions")):
        bad = np.flatnonzero(n_solutions == count)
        if len(bad):
            shown = ", ".join(f"line {numbers[i]}" for i in bad[:5])
            log.warning("%s: excluded %d puzzle(s) with %s (%s%s)", path, len(bad), problem, shown,
                        ", ..." if len(bad) > 5 else "")
    keep = np.flatnonzero(n_solutions == 1)
    if not len(keep):
        raise PuzzleError(f"{path}: none of its {len(q)} puzzles has a unique solution")
    a = np.asarray(solutions, np.uint8).reshape(len(q), -1)
    return _rated_table(path.name, q[keep], a[keep], None, str(path), lambda i: f"line {numbers[keep[i]]}", progress)


# --- train/test splits -------------------------------------------------------------------------

GENERATED_TEST_FACTOR = 3  # a generated pool holds this many candidates per test slot on top of train_size
GENERATED_TOPUP_FACTOR = 2  # rare hard buckets may add up to this many times the first pool, in two rounds
# 4x4 has only a few dozen essentially different minimal puzzles (36 in 2,000 generated), so a test set
# disjoint up to symmetry would leave no training data: there, equivalence means the identical string.
EXACT_EQUIVALENCE_SIZES = (4,)


def equivalence(grid_size: int) -> str:
    """What "the same puzzle" means for train/test disjointness and test deduplication."""
    return "exact" if grid_size in EXACT_EQUIVALENCE_SIZES else "canonical"


@dataclass
class Splits:
    """One run's data: memory-mapped train/test datasets plus what the notebooks report about them."""
    train: datasets.Dataset
    test: datasets.Dataset
    grid_size: int
    bucket_by: str
    bucket_labels: list[str]
    test_counts: dict[str, int]  # actual test puzzles per bucket (a rare bucket may fall short of test_per_bucket)
    equivalence: str  # "canonical" (up to symmetry and relabelling) or "exact" (4x4): see EXACT_EQUIVALENCE_SIZES
    cache_key: str

    def __repr__(self) -> str:
        return (f"Splits(train={len(self.train)}, test={len(self.test)}, grid_size={self.grid_size}, "
                f"bucket_by={self.bucket_by!r}, test_counts={self.test_counts}, equivalence={self.equivalence!r})")


def _source_id(cfg: DataConfig) -> dict:
    """What identifies the split's raw data, for the cache key."""
    if cfg.source == "generated":
        return {"generated": True, "min_clues": cfg.min_clues, "hard_fraction": cfg.hard_fraction,
                "pool": [GENERATED_TEST_FACTOR, GENERATED_TOPUP_FACTOR]}
    if cfg.source == "sudoku-extreme":
        folder = os.environ.get(EXTREME_DIR_ENV)
        if not folder:
            return {"hub": HUB_ID}
        return {"dir": [_file_id(Path(folder) / f"{s}.csv") for s in ("train", "test")
                        if (Path(folder) / f"{s}.csv").exists()]}
    return {"file": _file_id(source_path(cfg.source))}


def _splits_key(cfg: DataConfig) -> str:
    return _digest({"source": _source_id(cfg), "grid_size": cfg.grid_size, "train_size": cfg.train_size,
                    "train_max": cfg.train_max,
                    "test_per_bucket": cfg.test_per_bucket, "bucket_by": cfg.bucket_by,
                    "bucket_edges": list(cfg.bucket_edges), "seed": cfg.seed,
                    "equivalence": equivalence(cfg.grid_size)})


def load_splits(data_cfg: DataConfig, progress: bool = True) -> Splits:
    """Train and test sets for one run, cached on disk keyed by the data config fields that matter.

    Test: test_per_bucket puzzles per bucket of data_cfg.bucket_by, none rated above data.train_max (the
    scripts' top bucket is 51-1000), sampled with data_cfg.seed, no two equivalent (the scripts drew theirs
    unseeded; a fixed sample lets every variant be compared puzzle by puzzle). Train: the source's train
    split's first train_size rows, as the scripts took them, or a random rest of the pool the test came from
    (0 = all), minus anything equivalent to a test puzzle and anything rated above data.train_max. Both get a `bucket` column ("" for values below the first edge,
    which never enter the test set).
    """
    key = _splits_key(data_cfg)
    paths = {name: CACHE_DIR / "splits" / f"{key}-{name}.arrow" for name in ("train", "test")}
    if all(p.exists() for p in paths.values()):
        log.info("split cache hit: %s", paths["test"])
    else:
        train, test = _make_splits(data_cfg, progress)
        _write_arrow(test, paths["test"])
        _write_arrow(train, paths["train"])
    train, test = _read_arrow(paths["train"]), _read_arrow(paths["test"])
    labels = bucket_labels(list(data_cfg.bucket_edges))
    found = Counter(test.with_format("arrow")["bucket"].to_pylist())
    counts = {b: found.get(b, 0) for b in labels}
    _warn_short(counts, data_cfg)
    return Splits(train, test, data_cfg.grid_size, data_cfg.bucket_by, labels, counts,
                  equivalence(data_cfg.grid_size), key)


def eval_subset(test, max_puzzles: int):
    """The whole test split, or `max_puzzles` of it taken round-robin across buckets."""
    if not max_puzzles or max_puzzles >= len(test):
        return test
    buckets = np.asarray(test["bucket"])
    per_bucket = [np.flatnonzero(buckets == b) for b in dict.fromkeys(buckets.tolist())]
    order = [idx[i] for i in range(max(map(len, per_bucket))) for idx in per_bucket if i < len(idx)]
    return test.select(sorted(order[:max_puzzles]))


def load_eval_source(spec: str, cfg: DataConfig, progress: bool = True) -> datasets.Dataset:
    """An extra test set (eval.sources): up to test_per_bucket puzzles per bucket of cfg.bucket_by from
    "sudoku-extreme" (its test split), "benchmark", "kaggle", a file, or "generated:key=value,..."
    (this run's generator with those data fields changed and another seed)."""
    if spec.startswith("generated"):
        table = _generated_source(spec, cfg, progress)
    elif spec == "sudoku-extreme":
        table = _table(load_puzzles("sudoku-extreme", split="test", progress=progress))
    else:
        table = _table(load_puzzles(source_path(spec), progress=progress))
    sizes = set(pc.unique(table["grid_size"]).to_pylist())
    if sizes != {cfg.grid_size}:
        raise ValueError(f"eval.sources {spec!r} has {'/'.join(f'{s}x{s}' for s in sorted(sizes))} puzzles; "
                         f"this run's grid is {cfg.grid_size}x{cfg.grid_size}")
    if cfg.bucket_by in EXTRA_RATINGS:
        table = with_extra_ratings(table, progress)
    q = _cells(table["question"], spec)
    idx, _ = _sample_test(q, bucket_of(table[cfg.bucket_by].to_numpy(), cfg.bucket_edges), cfg,
                          equivalence(cfg.grid_size), np.random.default_rng([cfg.seed, 1]), progress)
    return dataset_class()(_with_buckets(with_extra_ratings(table.take(idx), progress), cfg))


def _generated_source(spec: str, cfg: DataConfig, progress: bool) -> pa.Table:
    _, _, fields = spec.partition(":")
    changed = dict(item.split("=", 1) for item in fields.split(",") if item)
    allowed = {"min_clues": int, "hard_fraction": float}
    unknown = sorted(set(changed) - set(allowed))
    if unknown:
        raise ValueError(f"eval.sources {spec!r}: a generated source may change {', '.join(allowed)}, not {', '.join(unknown)}")
    other = dataclasses.replace(cfg, **{k: allowed[k](v) for k, v in changed.items()})
    count = cfg.test_per_bucket * len(cfg.bucket_edges) * GENERATED_TEST_FACTOR
    return _generated(other, count, cfg.seed + 1, progress)  # another seed: not the training pool's puzzles


def _warn_short(counts: dict[str, int], cfg: DataConfig) -> None:
    short = {b: c for b, c in counts.items() if c < cfg.test_per_bucket}
    if short:
        log.warning("test buckets on %s short of %d puzzles: %s (source %s); per-bucket results there are noisier",
                    cfg.bucket_by, cfg.test_per_bucket, ", ".join(f"{b}: {c}" for b, c in short.items()), cfg.source)


def source_path(source: str) -> str:
    """data.source / eval.sources names that stand for a file: "kaggle" and "benchmark"."""
    if source == "benchmark":
        return str(BENCHMARK_CSV)
    if source == "kaggle":
        path = os.environ.get(KAGGLE_CSV_ENV)
        if not path:
            raise FileNotFoundError(f"source 'kaggle' reads the Kaggle CSV (quizzes,solutions) named by ${KAGGLE_CSV_ENV}, "
                                    f"which is not set")
        return path
    return source


def _pools(cfg: DataConfig, progress: bool) -> tuple[pa.Table, pa.Table | None]:
    """(test pool, train pool or None when train comes from the same pool)."""
    if cfg.source == "sudoku-extreme":
        return (_table(load_puzzles("sudoku-extreme", split="test", progress=progress)),
                _table(load_puzzles("sudoku-extreme", split="train", progress=progress)))
    if cfg.source == "generated":
        return _generated_pool(cfg, progress), None
    return _table(load_puzzles(source_path(cfg.source), progress=progress)), None


def _generated_pool(cfg: DataConfig, progress: bool) -> pa.Table:
    """train_size + GENERATED_TEST_FACTOR test candidates per slot, topped up while a bucket is short.

    Hard buckets can hold under 1% of generated puzzles. Top-ups (each cached like any generated
    set) are sized from the observed share of the rarest short bucket, within GENERATED_TOPUP_FACTOR
    times the first pool (an empty bucket counts as one puzzle in the pool, so it takes the whole
    budget; data.hard_fraction, more hill climbing, is the better way to reach very hard buckets).
    """
    if cfg.train_size == 0:
        raise ValueError("data.train_size=0 means 'all the source has', which a generated source lacks; "
                         "set data.train_size")
    base = cfg.train_size + cfg.test_per_bucket * len(cfg.bucket_edges) * GENERATED_TEST_FACTOR
    want = cfg.test_per_bucket + cfg.test_per_bucket // 8 + 8  # margin for duplicates dropped from the test
    tables = [_generated(cfg, base, cfg.seed, progress)]
    budget = GENERATED_TOPUP_FACTOR * base
    for round_ in (1, 2):
        count = _topup_size(tables, cfg, want, budget)
        if count <= 0:
            break
        tables.append(_generated(cfg, count, _topup_seed(cfg.seed, round_), progress))
        budget -= count
    return pa.concat_tables(tables)


# A top-up's seed once mixed in CACHE_CODE, so that any edit of data.py or puzzles.py, a comment's move even,
# re-drew the puzzles of every pool that needed one (cpu-smoke's): the salt is frozen at the value results
# version 2 drew with, so a refactor keeps every generated pool.
TOPUP_SALT = "56c516dba65a3e97"


def _topup_seed(seed: int, round_: int) -> int:
    return int(_digest({"seed": seed, "topup": round_}, code=TOPUP_SALT), 16) % 2**31


def _generated(cfg: DataConfig, count: int, seed: int, progress: bool) -> pa.Table:
    return _table(load_puzzles("generated", grid_size=cfg.grid_size, count=count, seed=seed, min_clues=cfg.min_clues,
                               hard_fraction=cfg.hard_fraction, progress=progress))


def _topup_size(tables: list[pa.Table], cfg: DataConfig, want: int, budget: int) -> int:
    """Puzzles to generate (within budget) so every bucket likely gets `want` rows; 0 when none is short."""
    values = np.concatenate([t[cfg.bucket_by].to_numpy() for t in tables])
    have = Counter(bucket_of(values, cfg.bucket_edges))
    short = [have.get(b, 0) for b in bucket_labels(list(cfg.bucket_edges)) if have.get(b, 0) < want]
    if not short or budget <= 0:
        return 0
    count = min(budget, max(int((want - h) * len(values) / max(h, 1) * 1.2) for h in short))
    log.info("generated pool of %d is short of %d candidates in some buckets (%s); generating %d more",
             len(values), want, ", ".join(f"{b}: {have.get(b, 0)}" for b in bucket_labels(list(cfg.bucket_edges))), count)
    return count


def _make_splits(cfg: DataConfig, progress: bool) -> tuple[pa.Table, pa.Table]:
    test_t, train_t = _pools(cfg, progress)
    if cfg.bucket_by in EXTRA_RATINGS:  # bucketing (and curricula) read the column on every row
        test_t = with_extra_ratings(test_t, progress)
        train_t = with_extra_ratings(train_t, progress) if train_t is not None else None
    for t in (test_t, train_t if train_t is not None else test_t):
        sizes = set(pc.unique(t["grid_size"]).to_pylist())
        if sizes != {cfg.grid_size}:
            raise ValueError(f"data.grid_size is {cfg.grid_size} but source {cfg.source!r} has "
                             f"{'/'.join(f'{s}x{s}' for s in sorted(sizes))} puzzles")
    how = equivalence(cfg.grid_size)
    rng = np.random.default_rng(cfg.seed)
    test_q = _cells(test_t["question"], "test pool")
    test_values = test_t[cfg.bucket_by].to_numpy()
    test_labels = bucket_of(test_values, cfg.bucket_edges)
    if cfg.train_max:  # the scripts' top bucket is 51-1000 for the test sample too
        test_labels[test_values > cfg.train_max] = ""
    test_idx, test_forms = _sample_test(test_q, test_labels, cfg, how, rng, progress)
    if not len(test_idx):
        raise ValueError(f"source {cfg.source!r} has no puzzles in any {cfg.bucket_by} bucket "
                         f"(edges {cfg.bucket_edges}); nothing to test on")

    separate = train_t is not None
    if not separate:
        train_t, train_q = test_t, test_q
    else:
        train_q = _cells(train_t["question"], "train pool")
    clash = _equivalent_to(train_q, test_q[test_idx], test_forms, how, progress)
    capped = train_t[cfg.bucket_by].to_numpy() > cfg.train_max if cfg.train_max else np.zeros(len(train_q), bool)
    if separate:  # the scripts' train set: the split's first train_size rows, those rated over the cap dropped
        first = np.arange(min(cfg.train_size or len(train_q), len(train_q)))
        train_idx = first[~clash[first] & ~capped[first]]
    else:  # the test sample came out of this pool: a random rest of it
        train_idx = rng.permutation(np.flatnonzero(~clash & ~capped))[:cfg.train_size or None]
    if cfg.train_size and len(train_idx) < cfg.train_size:
        log.warning("train split has %d puzzles, fewer than data.train_size=%d", len(train_idx), cfg.train_size)
    train_idx = np.sort(train_idx)  # source order: memory-local reads
    log.info("splits: %d train, %d test (%d pool rows dropped as %s-equivalent to test puzzles)",
             len(train_idx), len(test_idx), int(clash.sum()), how)
    test = with_extra_ratings(test_t.take(test_idx), progress)  # the analysis reads them on every test puzzle
    return _with_buckets(train_t.take(train_idx), cfg), _with_buckets(test, cfg)


def _with_buckets(t: pa.Table, cfg: DataConfig) -> pa.Table:
    return t.append_column("bucket", pa.array(bucket_of(t[cfg.bucket_by].to_numpy(), cfg.bucket_edges), pa.string()))


def _forms(q: np.ndarray, how: str, progress: bool) -> list:
    """The identity of each puzzle under the equivalence in force: canonical string or raw bytes."""
    if how == "exact":
        return [row.tobytes() for row in q]
    n = SIZE_OF_CELLS[q.shape[1]]
    return puzzles.canonical_many(q.reshape(-1, n, n), progress=progress)


def _sample_test(q: np.ndarray, labels: np.ndarray, cfg: DataConfig, how: str, rng: np.random.Generator,
                 progress: bool) -> tuple[np.ndarray, set]:
    """Fixed-count random sample per bucket, skipping puzzles equivalent to one already taken.

    Candidates are canonicalised a bucket's worth at a time (plus a margin for duplicates), so a
    big pool costs only what the sample needs.
    """
    k = cfg.test_per_bucket
    chosen, seen = [], set()
    for label in bucket_labels(list(cfg.bucket_edges)):
        candidates = rng.permutation(np.flatnonzero(labels == label))
        got, pos = [], 0
        while len(got) < k and pos < len(candidates):
            need = k - len(got)
            chunk = candidates[pos:pos + need + need // 8 + 8]
            pos += len(chunk)
            for i, form in zip(chunk, _forms(q[chunk], how, progress)):
                if len(got) < k and form not in seen:
                    seen.add(form)
                    got.append(i)
        chosen.extend(got)
    return np.asarray(chosen, dtype=np.int64), seen


_FEATURE_WORDS = np.random.default_rng(20240611).integers(0, 2**63, size=10**4, dtype=np.uint64)


def _invariant(q: np.ndarray) -> np.ndarray:
    """A cheap uint64 fingerprint that symmetries and relabelling leave unchanged.

    Equivalent puzzles always share it, so only puzzles sharing it with a test puzzle need the
    expensive canonical form (on the benchmark CSV about 1% of rows do). Each given gets a feature
    code from the clue counts of its row and column (unordered: transposition swaps them), of its
    box, and the count of its digit; the puzzle's fingerprint is a multiset hash of those codes (a
    wrapping sum of a random word per code), which no reordering of cells or digits can change.
    """
    n = SIZE_OF_CELLS[q.shape[1]]
    r, c = puzzles.box_shape(n)
    out = np.empty(len(q), np.uint64)
    for start in range(0, len(q), _CHUNK // 4):
        g = q[start:start + _CHUNK // 4].reshape(-1, n, n)
        b = len(g)
        filled = g > 0
        rows = np.broadcast_to(filled.sum(axis=2, dtype=np.int16)[:, :, None], g.shape)
        cols = np.broadcast_to(filled.sum(axis=1, dtype=np.int16)[:, None, :], g.shape)
        boxes = filled.reshape(b, n // r, r, n // c, c).sum(axis=(2, 4), dtype=np.int16)
        boxes = np.broadcast_to(boxes[:, :, None, :, None], (b, n // r, r, n // c, c)).reshape(g.shape)
        per_digit = np.stack([(g == d).sum(axis=(1, 2), dtype=np.int16) for d in range(n + 1)], axis=1)
        digits = np.take_along_axis(per_digit, g.reshape(b, -1).astype(np.intp), axis=1).reshape(g.shape)
        k = np.int16(n + 1)  # every count is 0..N: one base-(N+1) digit each, so codes stay below 10**4
        code = ((np.minimum(rows, cols) * k + np.maximum(rows, cols)) * k + boxes) * k + digits
        words = np.where(filled, _FEATURE_WORDS[code], np.uint64(0))
        out[start:start + b] = words.reshape(b, -1).sum(axis=1, dtype=np.uint64)  # wraps mod 2**64
    return out


def _equivalent_to(q: np.ndarray, test_q: np.ndarray, test_forms: set, how: str, progress: bool) -> np.ndarray:
    """Bool mask of the rows of q equivalent to a test puzzle; only fingerprint matches get compared."""
    mask = np.zeros(len(q), bool)
    suspects = np.flatnonzero(np.isin(_invariant(q), _invariant(test_q)))
    if len(suspects):
        mask[suspects] = [f in test_forms for f in _forms(q[suspects], how, progress)]
    return mask
