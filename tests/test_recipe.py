"""The gpu-paper recipe end to end on the CPU: the real data path (local CSVs in the hub's format,
rating buckets 0 / 1-2 / 3-10 / 11-50 / 51+, the reverse curriculum) and the per-rating table. Only the
sizes change: steps, batch, and how many puzzles there are."""
import numpy as np
import pandas as pd
import pytest

from lib import data
from lib.workbook import results
from lib.experiments.resolve import make_config
from lib.curriculum import Curriculum
from lib.train import train

SIZES_ONLY = {"train.steps": 4, "train.batch_size": 16, "data.train_size": 400, "data.test_per_bucket": 3,
              "schedule.warmup_steps": 1, "train.log_every": 2, "train.eval_every": 4, "train.checkpoint_every": 4,
              "eval.batch_size": 64, "train.device": "cpu", "train.threads": 2}


@pytest.fixture(scope="module")
def hub_folder(tmp_path_factory):
    """train.csv and test.csv in the hub's schema, from the real benchmark puzzles, every bucket present."""
    if not data.BENCHMARK_CSV.exists():
        pytest.skip(f"{data.BENCHMARK_CSV} not found (shared/ beside the repo)")
    df = pd.read_csv(data.BENCHMARK_CSV, dtype={"source": str, "question": str, "answer": str, "rating": np.int64})
    df["bucket"] = data.bucket_of(df["rating"].to_numpy(), [0, 1, 3, 11, 51])
    sample = df[df.bucket != ""].groupby("bucket").sample(100, random_state=0)
    folder = tmp_path_factory.mktemp("sudoku-extreme")
    columns = ["source", "question", "answer", "rating"]
    sample.iloc[::2][columns].to_csv(folder / "train.csv", index=False)
    sample.iloc[1::2][columns].to_csv(folder / "test.csv", index=False)
    return folder


def test_gpu_paper_runs_end_to_end_on_cpu(hub_folder, tmp_path, monkeypatch):
    monkeypatch.setenv(data.EXTREME_DIR_ENV, str(hub_folder))
    cfg = make_config("gpu-paper", overrides=SIZES_ONLY)
    assert (cfg.model.d_model, cfg.model.iterations, cfg.curriculum.kind) == (128, 16, "reverse")
    summary = train(cfg, tmp_path / "run", progress=False)
    assert summary["status"] == "complete" and summary["params"] == pytest.approx(800_000, rel=0.01)
    buckets = ["0", "1-2", "3-10", "11-50", "51+"]
    assert list(summary["final"]) == buckets + ["all"]

    splits = data.load_splits(cfg.data, progress=False)
    stages = Curriculum(cfg, np.asarray(splits.train["rating"]))
    assert [len(p) for p in stages.pools] == sorted(len(p) for p in stages.pools), "hard first, then wider"
    assert min(np.asarray(splits.train["rating"])[stages.pools[0]]) >= 21
    assert (np.asarray(splits.test["deduction_depth"]) != data.NOT_RATED).all(), "the test split is fully rated"

    table = results.rating_table(results.collect([tmp_path / "run"])).reset_index()
    assert list(table["bucket"]) == buckets + ["all"]
    assert table["solved % (final)"].between(0, 100).all()
