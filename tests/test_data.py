"""lib/data.py: every source loads into one rated schema, bad input names file and row, splits are
disjoint up to symmetry, and both loads and splits are cached. No test reaches the network: the hub
code path runs on local files in the hub's exact format."""
import logging
import re

import datasets
import huggingface_hub
import numpy as np
import pandas as pd
import pytest

from helpers import DATASET_COLUMNS, apply_symmetry
from lib import data
from lib.sudoku import puzzles
from lib.config import DataConfig
from lib.experiments.resolve import make_config
from lib.sudoku.puzzles import PuzzleError

EDGES = [0, 1, 3, 11, 51]  # the log's rating buckets
HUB_COLUMNS = ["source", "question", "answer", "rating"]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Empty caches per test, and the hub unreachable even if the environment allowed it."""
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv(data.EXTREME_DIR_ENV, raising=False)


@pytest.fixture(scope="module")
def bench() -> pd.DataFrame:
    """The real benchmark CSV (sudoku-extreme schema), with its rating bucket."""
    if not data.BENCHMARK_CSV.exists():
        pytest.skip(f"{data.BENCHMARK_CSV} not found (shared/ beside the repo, or $SUDOKU_BENCHMARK_CSV)")
    df = pd.read_csv(data.BENCHMARK_CSV, dtype={"source": str, "question": str, "answer": str, "rating": np.int64})
    df["bucket"] = data.bucket_of(df["rating"].to_numpy(), EDGES)
    return df


def pick(df: pd.DataFrame, per_bucket: int, seed: int, exclude=None) -> pd.DataFrame:
    """`per_bucket` rows from each rating bucket."""
    if exclude is not None:
        df = df.drop(index=exclude.index)
    return df.groupby("bucket").sample(per_bucket, random_state=seed)


def write_hub_csv(df: pd.DataFrame, path) -> None:
    df[HUB_COLUMNS].to_csv(path, index=False)


def twin(question: str, answer: str, seed: int) -> tuple[str, str]:
    """The same puzzle under a random validity-preserving symmetry and relabelling."""
    n = int(round(len(question) ** 0.5))
    rng = np.random.default_rng(seed)
    while True:
        cell, digit = puzzles.random_symmetry(n, rng)
        q2, a2 = (puzzles.format(apply_symmetry(puzzles.parse(s), cell, digit)) for s in (question, answer))
        if q2 != question:
            return q2, a2


def with_twins(df: pd.DataFrame) -> pd.DataFrame:
    rows = [dict(zip(("question", "answer"), twin(q, a, i)), source="twin", rating=r, bucket=b)
            for i, (q, a, r, b) in enumerate(zip(df.question, df.answer, df.rating, df.bucket))]
    return pd.DataFrame(rows)


# --- sources -------------------------------------------------------------------------------------

def test_benchmark_csv_keeps_its_ratings_and_computes_the_others_on_demand(bench, tmp_path):
    sub = pick(bench, 6, seed=0)
    path = tmp_path / "bench.csv"
    write_hub_csv(sub, path)
    ds = data.load_puzzles(str(path), progress=False)
    assert ds.column_names == DATASET_COLUMNS
    assert ds["question"] == list(sub.question) and ds["answer"] == list(sub.answer)
    assert ds["rating"] == list(sub.rating) and ds["source"] == list(sub.source)
    assert set(ds["grid_size"]) == {9}
    # a source that ships ratings is not rated on load (a multi-million-row train split stays cheap) ...
    assert all(set(ds[col]) == {data.NOT_RATED} for col in data.EXTRA_RATINGS)
    # ... until a run uses the extra columns
    rated = data.with_extra_ratings(ds.with_format("arrow")[:], progress=False)
    ratings = puzzles.rate_many(puzzles.parse_many(list(sub.question)), progress=False)
    for col in data.EXTRA_RATINGS:
        assert rated[col].to_pylist() == ratings[col].tolist()
    q, a = data.to_arrays(ds)
    assert q.shape == a.shape == (len(sub), 81) and q.dtype == a.dtype == np.uint8
    assert np.array_equal(q, puzzles.parse_many(list(sub.question)).reshape(len(sub), 81))
    shuffled = ds.select([3, 0, 7])  # index mappings are respected
    assert np.array_equal(data.to_arrays(shuffled)[0], q[[3, 0, 7]])


def test_kaggle_csv_gets_computed_ratings(bench, tmp_path):
    sub = pick(bench, 2, seed=1)
    path = tmp_path / "kaggle.csv"
    pd.DataFrame({"quizzes": sub.question.str.replace(".", "0"), "solutions": sub.answer}).to_csv(path, index=False)
    ds = data.load_puzzles(str(path), progress=False)
    assert ds["question"] == list(sub.question)  # normalised to '.' blanks
    assert list(ds["rating"]) == list(ds["guesses"])
    assert set(ds["source"]) == {"kaggle.csv"}


def test_text_file_reports_and_excludes_puzzles_without_a_unique_solution(bench, tmp_path, caplog):
    good = bench.iloc[[0, 60_000]]
    q0 = good.question.iloc[0]
    given = next(i for i, ch in enumerate(q0) if ch != ".")
    blank = next(i for i in range(given - given % 9, given - given % 9 + 9) if q0[i] == ".")
    conflict = q0[:blank] + q0[given] + q0[blank + 1:]  # the same digit twice in a row: no solution
    several = "." * 81
    text = ["# a comment, then a blank line", "", good.question.iloc[0], conflict,
            good.question.iloc[1].replace(".", "0") + "  trailing words are ignored", several]
    path = tmp_path / "puzzles.txt"
    path.write_text("\n".join(text) + "\n")
    with caplog.at_level(logging.WARNING, logger="lib.data"):
        ds = data.load_puzzles(str(path), progress=False)
    assert ds["question"] == list(good.question) and ds["answer"] == list(good.answer)
    assert list(ds["rating"]) == list(ds["guesses"])
    assert "excluded 1 puzzle(s) with no solution (line 4)" in caplog.text
    assert "excluded 1 puzzle(s) with several solutions (line 6)" in caplog.text


@pytest.mark.parametrize("bad, problem", [("12x" + "." * 78, "character"), ("." * 80, "80 characters")])
def test_malformed_text_line_names_file_and_line(tmp_path, bad, problem):
    path = tmp_path / "broken.txt"
    path.write_text("." * 81 + "\n\n" + bad + "\n")
    with pytest.raises(PuzzleError, match=rf"broken\.txt line 3: .*{problem}"):
        data.load_puzzles(str(path), progress=False)


def test_bad_csv_rows_name_file_and_line(bench, tmp_path):
    sub = bench.iloc[:5].copy()
    a = sub.answer.iloc[3]
    sub.iloc[3, sub.columns.get_loc("answer")] = a[1] + a[0] + a[2:]  # breaks a row of the answer grid
    path = tmp_path / "swapped.csv"
    write_hub_csv(sub, path)
    with pytest.raises(PuzzleError, match=r"swapped\.csv line 5: .*answer"):
        data.load_puzzles(str(path), progress=False)

    sub = bench.iloc[:5].copy()
    sub.iloc[2, sub.columns.get_loc("question")] = sub.question.iloc[2][:-1]
    write_hub_csv(sub, path := tmp_path / "short.csv")
    with pytest.raises(PuzzleError, match=r"short\.csv line 4: 80 characters"):
        data.load_puzzles(str(path), progress=False)

    path = tmp_path / "ragged.csv"
    path.write_text("source,question,answer,rating\nx," + "." * 81 + ",1\n")
    with pytest.raises(PuzzleError, match=r"ragged\.csv.*line 2: 3 fields"):
        data.load_puzzles(str(path), progress=False)

    path = tmp_path / "other.csv"
    path.write_text("puzzle,solution\n1,2\n")
    with pytest.raises(PuzzleError, match="quizzes,solutions"):
        data.load_puzzles(str(path), progress=False)


def test_answers_must_be_solutions_that_keep_the_givens():
    q = puzzles.parse_many(["1..2" "...." "...." "....", "1..." "...." "...." "...."]).reshape(2, 16)
    a = puzzles.parse_many(["1342" "2413" "3124" "4231", "2143" "3412" "4321" "1234"]).reshape(2, 16)
    with pytest.raises(PuzzleError, match="mine row 1: the answer does not match"):
        data._check_answers(q, a, "mine")
    data._check_answers(q[:1], a[:1], "mine")


@pytest.mark.parametrize("n", [4, 6])
def test_generated_puzzles_are_unique_rated_and_cached(n, monkeypatch):
    ds = data.load_puzzles("generated", grid_size=n, count=40, seed=3, progress=False)
    assert len(ds) == 40 and set(ds["source"]) == {f"generated-{n}x{n}"} and set(ds["grid_size"]) == {n}
    assert list(ds["rating"]) == list(ds["guesses"])
    q, a = data.to_arrays(ds)
    sols, n_sol, _ = puzzles.solve_many(q.reshape(-1, n, n))
    assert (n_sol == 1).all() and np.array_equal(sols.reshape(40, -1), a)

    def regenerate(*args, **kwargs):
        raise AssertionError("a cache hit must not generate again")
    with monkeypatch.context() as m:
        m.setattr(puzzles, "generate", regenerate)
        again = data.load_puzzles("generated", grid_size=n, count=40, seed=3, progress=False)
    assert again.to_pandas().equals(ds.to_pandas())
    other = data.load_puzzles("generated", grid_size=n, count=40, seed=4, progress=False)
    assert list(other["question"]) != list(ds["question"])


def test_sudoku_extreme_reads_local_files_in_the_hubs_format(bench, tmp_path, monkeypatch):
    train, test = pick(bench, 3, seed=2), pick(bench, 2, seed=3)
    hub = tmp_path / "sudoku-extreme"
    hub.mkdir()
    write_hub_csv(train, hub / "train.csv")
    write_hub_csv(test, hub / "test.csv")
    by_dir = data.load_puzzles("sudoku-extreme", split="test", data_dir=str(hub), progress=False)
    assert by_dir.column_names == DATASET_COLUMNS
    assert by_dir["question"] == list(test.question) and by_dir["rating"] == list(test.rating)
    by_files = data.load_puzzles("sudoku-extreme", split="train", data_files=str(hub / "train.csv"), progress=False)
    assert by_files["question"] == list(train.question)
    monkeypatch.setenv(data.EXTREME_DIR_ENV, str(hub))
    assert data.load_puzzles("sudoku-extreme", split="train", progress=False)["answer"] == list(train.answer)
    write_hub_csv(train, hub / "test.csv")  # an edited file is re-read, not served from the rating cache
    assert data.load_puzzles("sudoku-extreme", split="test", progress=False)["question"] == list(train.question)
    with pytest.raises(ValueError, match="'train' and 'test'"):
        data.load_puzzles("sudoku-extreme", split="validation")


def test_a_sudoku_extreme_folder_reads_the_same_without_datasets(bench, tmp_path, monkeypatch):
    """A GPU image has no datasets library: a folder of the hub's CSVs loads, to the same rows."""
    from lib.sudoku.tables import ArrowDataset
    hub = tmp_path / "sudoku-extreme"
    hub.mkdir()
    write_hub_csv(pick(bench, 3, seed=2), hub / "train.csv")
    write_hub_csv(pick(bench, 2, seed=3), hub / "test.csv")
    load = lambda: data.load_puzzles("sudoku-extreme", split="test", data_dir=hub, progress=False)
    with_library = load()
    monkeypatch.setattr(data, "dataset_class", lambda: ArrowDataset)
    without = load()
    assert isinstance(without, ArrowDataset)
    assert without.to_pandas().equals(with_library.to_pandas())
    with pytest.raises(FileNotFoundError, match="no train.csv"):
        data.load_puzzles("sudoku-extreme", split="train", data_dir=str(tmp_path), progress=False)


def test_offline_hub_error_says_how_to_point_at_local_csvs():
    with pytest.raises(data.HubUnavailableError) as err:
        data.load_puzzles("sudoku-extreme", split="test", progress=False)
    message = str(err.value)
    print(message)
    assert "data_dir=" in message and data.EXTREME_DIR_ENV in message and "train.csv" in message


def test_unknown_options_and_missing_files_are_named():
    with pytest.raises(TypeError, match="size.*valid: grid_size"):
        data.load_puzzles("generated", size=4)
    with pytest.raises(FileNotFoundError, match="'generated'"):
        data.load_puzzles("no/such/file.csv")


# --- splits --------------------------------------------------------------------------------------

def extreme_cfg(**kw) -> DataConfig:
    return DataConfig(source="sudoku-extreme", grid_size=9, train_size=0, bucket_by="rating",
                      bucket_edges=EDGES, **kw)


def test_splits_drop_train_puzzles_equivalent_to_test_puzzles(bench, tmp_path, monkeypatch):
    test = pick(bench, 4, seed=4)
    train = pick(bench, 6, seed=5, exclude=test)
    twins = with_twins(test)
    hub = tmp_path / "hub"
    hub.mkdir()
    write_hub_csv(test, hub / "test.csv")
    write_hub_csv(pd.concat([train, twins]), hub / "train.csv")  # a transformed copy of every test puzzle
    monkeypatch.setenv(data.EXTREME_DIR_ENV, str(hub))

    splits = data.load_splits(extreme_cfg(test_per_bucket=3), progress=False)
    assert splits.test_counts == {b: 3 for b in data.bucket_labels(EDGES)} and splits.equivalence == "canonical"
    twin_of = dict(zip(test.question, twins.question))
    chosen = {twin_of[q] for q in splits.test["question"]}
    train_qs = set(splits.train["question"])
    assert not chosen & train_qs  # the copies of test puzzles are gone ...
    assert set(twins.question) - chosen <= train_qs  # ... and only those
    assert set(train.question) <= train_qs and len(splits.train) == len(train) + len(twins) - len(chosen)
    canon = lambda ds: set(puzzles.canonical_many(data.to_arrays(ds)[0].reshape(-1, 9, 9), progress=False))
    assert not canon(splits.train) & canon(splits.test)
    for ds in (splits.train, splits.test):
        assert ds["bucket"] == data.bucket_of(ds["rating"], EDGES).tolist()


def test_the_rating_cap_keeps_puzzles_above_it_out_of_both_splits(bench, tmp_path, monkeypatch):
    """The scripts' top bucket is 51-1000: data.train_max drops a puzzle rated above it from the training pool
    and from the test sample; 0 keeps everything."""
    test = pick(bench, 5, seed=6)
    train = pick(bench, 4, seed=7, exclude=test)
    test.loc[test.index[test.bucket == "51+"][:2], "rating"] = 1500
    train.loc[train.index[:2], "rating"] = 2000
    hub = tmp_path / "hub"
    hub.mkdir()
    write_hub_csv(test, hub / "test.csv")
    write_hub_csv(train, hub / "train.csv")
    monkeypatch.setenv(data.EXTREME_DIR_ENV, str(hub))

    capped = data.load_splits(extreme_cfg(test_per_bucket=3, train_max=1000), progress=False)
    assert max(capped.test["rating"]) <= 1000 and capped.test_counts == {b: 3 for b in data.bucket_labels(EDGES)}
    assert max(capped.train["rating"]) <= 1000 and len(capped.train) == len(train) - 2
    whole = data.load_splits(extreme_cfg(test_per_bucket=5, train_max=0), progress=False)
    assert sorted(whole.test["rating"])[-2:] == [1500, 1500] and sorted(whole.train["rating"])[-2:] == [2000, 2000]


def test_one_file_split_dedupes_the_test_and_reports_short_buckets(bench, tmp_path, caplog):
    rows = pd.concat([pick(bench[bench.bucket != "51+"], 4, seed=6), bench[bench.bucket == "51+"].iloc[:2]])
    path = tmp_path / "pool.csv"
    write_hub_csv(pd.concat([rows, with_twins(rows)]), path)  # every puzzle twice, up to symmetry
    cfg = DataConfig(source=str(path), grid_size=9, train_size=0, test_per_bucket=3, bucket_by="rating",
                     bucket_edges=EDGES)
    with caplog.at_level(logging.WARNING, logger="lib.data"):
        splits = data.load_splits(cfg, progress=False)
    assert splits.test_counts == {"0": 3, "1-2": 3, "3-10": 3, "11-50": 3, "51+": 2}
    assert "51+: 2" in caplog.text
    test_canon = puzzles.canonical_many(data.to_arrays(splits.test)[0].reshape(-1, 9, 9), progress=False)
    assert len(set(test_canon)) == len(test_canon) == 14
    assert len(splits.train) == 2 * len(rows) - 2 * 14  # each test puzzle and its twin leave the pool
    with pytest.raises(ValueError, match="grid_size is 6 but source"):
        data.load_splits(DataConfig(source=str(path), grid_size=6, test_per_bucket=3), progress=False)


def test_generated_splits_top_up_rare_buckets_and_stay_disjoint(caplog):
    cfg = DataConfig(source="generated", grid_size=6, train_size=300, test_per_bucket=10, bucket_by="deduction_depth",
                     bucket_edges=[1, 3, 4, 5, 6], min_clues=14, seed=1)
    with caplog.at_level(logging.INFO, logger="lib.data"):
        splits = data.load_splits(cfg, progress=False)
    assert re.search(r"pool of 450 is short .*6\+: [0-9]\); generating \d+ more", caplog.text)  # 6+ is rare
    assert splits.test_counts == {b: 10 for b in data.bucket_labels(cfg.bucket_edges)}
    assert len(splits.train) == 300 and splits.grid_size == 6
    q_train, q_test = (data.to_arrays(ds)[0].reshape(-1, 6, 6) for ds in (splits.train, splits.test))
    assert not set(puzzles.canonical_many(q_train, progress=False)) & set(puzzles.canonical_many(q_test, progress=False))


def test_topped_up_pools_do_not_depend_on_the_codes_hash(monkeypatch, caplog):
    """An edit of data.py changes CACHE_CODE (the caches' key); the puzzles a top-up draws must not change with
    it, or a refactor would change every run whose pool needs one (cpu-smoke's does)."""
    cfg = make_config("cpu-smoke").data
    with caplog.at_level(logging.INFO, logger="lib.data"):
        first = data.load_splits(cfg, progress=False)
    assert "generating" in caplog.text, "cpu-smoke's pool is topped up, so this test reaches the top-up seed"
    monkeypatch.setattr(data, "CACHE_CODE", "an-edited-data-py")  # a new key: nothing is served from the cache
    again = data.load_splits(cfg, progress=False)
    for a, b in ((first.train, again.train), (first.test, again.test)):
        assert a.to_pandas().equals(b.to_pandas())


def test_split_cache_hit_builds_nothing_and_is_equal(monkeypatch):
    cfg = make_config("cpu-smoke").data
    first = data.load_splits(cfg, progress=False)

    def rebuild(*args, **kwargs):
        raise AssertionError("a cache hit must not rebuild the pools")
    with monkeypatch.context() as m:
        m.setattr(data, "_pools", rebuild)
        again = data.load_splits(cfg, progress=False)
    for a, b in ((first.train, again.train), (first.test, again.test)):
        assert a.to_pandas().equals(b.to_pandas())
    assert again.test_counts == {b: cfg.test_per_bucket for b in again.bucket_labels}
    assert len(again.train) == cfg.train_size and again.equivalence == "exact"  # 4x4: too few classes
    assert not set(again.train["question"]) & set(again.test["question"])
    puzzles_, answers = data.to_arrays(again.train)
    assert puzzles_.shape == answers.shape == (cfg.train_size, 16) and answers.min() == 1 and answers.max() == 4
    cfg.seed = 1
    assert list(data.load_splits(cfg, progress=False).test["question"]) != list(again.test["question"])


# --- helpers -------------------------------------------------------------------------------------

def test_bucket_of_follows_config_labels():
    labels = data.bucket_of([-1, 0, 1, 2, 3, 10, 11, 50, 51, 999], EDGES)
    assert labels.tolist() == ["", "0", "1-2", "1-2", "3-10", "3-10", "11-50", "11-50", "51+", "51+"]


@pytest.mark.parametrize("n", [4, 6, 9])
def test_fingerprint_survives_every_symmetry(n):
    rng = np.random.default_rng(n)
    q, _ = puzzles.generate(n, 20, seed=n, progress=False)
    flat = q.reshape(20, -1)
    moved = np.stack([apply_symmetry(g, *puzzles.random_symmetry(n, rng)) for g in q]).reshape(20, -1)
    assert np.array_equal(data._invariant(flat), data._invariant(moved))


# --- common puzzle-file formats -------------------------------------------------------------------------


def test_a_sudoku_exchange_bank_file_reads_its_puzzle_column(tmp_path):
    """`id puzzle rating` per line (the sudoku-exchange puzzle bank): the puzzle is the field that is one."""
    q, a = puzzles.generate(4, 2, seed=0, progress=False)
    path = tmp_path / "bank.txt"
    path.write_text(f"0000183b305c {puzzles.format(q[0])} 1.2\n00001cf3b7c3 {puzzles.format(q[1])} 3.4\n")
    ds = data.load_puzzles(str(path), progress=False)
    assert ds["question"] == [puzzles.format(g) for g in q] and ds["answer"] == [puzzles.format(g) for g in a]


@pytest.mark.parametrize("content, message", [
    ("0000183b305c 1.2\n", "line 1: none of its 2 fields is a puzzle"),
    ('[{"puzzle": "1.3."}]\n', "looks like JSON"),
    ("1 2 | . 4\n3 4 | 1 2\n2 1 | 4 3\n4 3 | 2 1\n", "looks like one 4x4 grid written over 4 lines"),
    ("0000183b305c\n", "line 1: 12 characters; a puzzle has 16, 36 or 81"),
])
def test_a_file_in_another_format_is_a_puzzle_error_that_names_it(content, message, tmp_path):
    path = tmp_path / "other.txt"
    path.write_text(content)
    with pytest.raises(PuzzleError, match=re.escape(message)):
        data.load_puzzles(str(path), progress=False)
