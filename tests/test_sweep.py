"""Sweeps: a grid of notebook runs, resumable and failure-isolated, locally and through submitit."""
from pathlib import Path

import pytest

from lib.workbook import runner, sweep
from lib.config import ConfigError

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "02_iterations.ipynb"


def test_grid_expands_with_shorthands():
    params = runner.notebook_parameters(NOTEBOOK)
    jobs = sweep.expand_grid({"variant": ["baseline", "no-iteration"], "seed": [0, 1], "fixed": {"preset": "cpu-smoke"}}, params)
    assert len(jobs) == 4
    assert {"variants": ["baseline"], "seeds": [1], "preset": "cpu-smoke"} in jobs
    assert sweep.job_name("s", jobs[0], {"preset": "cpu-smoke"}) == "s--variants=baseline,seeds=0"
    with pytest.raises(ConfigError, match="no parameter\\(s\\) learning_rate"):
        sweep.expand_grid({"learning_rate": [1, 2]}, params)
    with pytest.raises(ConfigError, match="non-empty list"):
        sweep.expand_grid({"seed": 3}, params)


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "submitit-local"])
def test_sweep_isolates_failures_and_resumes(executor, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("variant: [curriculum-mixed, not-a-variant]\nfixed: {preset: cpu-smoke, overrides: {train.steps: 20, schedule.warmup_steps: 5, train.eval_every: 20}}\n")
    table = sweep.run_sweep(NOTEBOOK, grid, workers=2, executor=executor, out_root=tmp_path / "out")
    status = dict(zip(table.name, table.status))
    assert status == {"grid--variants=curriculum-mixed": "complete", "grid--variants=not-a-variant": "failed"}
    failed = table[table.status == "failed"].iloc[0]
    assert "unknown variant 'not-a-variant'" in failed.error
    index = (tmp_path / "out" / "index.html").read_text()
    assert "grid--variants=curriculum-mixed" in index
    assert "grid--variants=not-a-variant" not in index, "refused before its notebook started"

    again = sweep.run_sweep(NOTEBOOK, grid, workers=2, executor=executor, out_root=tmp_path / "out")
    status = dict(zip(again.name, again.status))
    assert status["grid--variants=curriculum-mixed"] == "skipped (finished)"
    assert status["grid--variants=not-a-variant"] == "failed"  # failures are retried, and fail again


def test_jobs_held_elsewhere_are_skipped_without_running(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("variant: [not-a-variant, baseline]\nfixed: {preset: cpu-smoke}\n")
    table = sweep.run_sweep(NOTEBOOK, grid, workers=1, out_root=tmp_path / "out", have=lambda params: True)
    assert set(table.status) == {"skipped (committed)"} and len(table) == 2  # neither notebook started
    assert not list((tmp_path / "out").glob("*/grid--*"))
