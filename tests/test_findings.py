"""The claim checker: bootstrap coverage, verdict logic, tidy results from run folders, the findings notebook."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lib import findings
from lib.config import VARIANTS
from lib import stats, sweep
from lib.claims import CLAIMS, Claim, Side, claim_variants
from lib.config import config_twin

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "findings-cpu-smoke.parquet"


# --- statistics ----------------------------------------------------------------------------------

def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _draw(rng, effect: float, n_seeds: int = 3, n_puzzles: int = 300, seed_sd: float = 0.1):
    """Synthetic per-(seed, puzzle) solved arrays: shared puzzle difficulty, a per-run skill offset
    (training variance) and Bernoulli outcomes; `effect` is A's logit advantage."""
    difficulty = rng.normal(0, 1.5, n_puzzles)
    p_a = _sigmoid(0.8 + effect + rng.normal(0, seed_sd, (n_seeds, 1)) - difficulty)
    p_b = _sigmoid(0.8 + rng.normal(0, seed_sd, (n_seeds, 1)) - difficulty)
    return rng.random(p_a.shape) < p_a, rng.random(p_b.shape) < p_b


def _true_difference(effect: float, seed_sd: float = 0.1, n: int = 400_000) -> float:
    rng = np.random.default_rng(123)
    difficulty = rng.normal(0, 1.5, n)
    a = _sigmoid(0.8 + effect + rng.normal(0, seed_sd, n) - difficulty)
    b = _sigmoid(0.8 + rng.normal(0, seed_sd, n) - difficulty)
    return 100 * float((a - b).mean())


def test_ci_covers_the_true_difference_in_at_least_90_percent_of_draws():
    rng = np.random.default_rng(0)
    true = _true_difference(0.3)
    covered = 0
    for i in range(100):
        a, b = _draw(rng, 0.3)
        _, lo, hi = stats.paired_bootstrap(a, b, n_boot=300, seed=i)
        covered += lo <= true <= hi
    assert covered >= 90, f"the 95% CI covered the true difference {true:.2f}pp in only {covered}/100 draws"


def test_a_known_null_is_inconclusive_and_a_large_effect_holds():
    rng = np.random.default_rng(1)
    verdicts = []
    for i in range(40):
        a, b = _draw(rng, 0.0)
        verdicts.append(stats.verdict(*stats.paired_bootstrap(a, b, n_boot=300, seed=i), ">"))
    assert verdicts.count("inconclusive") >= 36, verdicts
    a, b = _draw(rng, 1.5)
    assert stats.verdict(*stats.paired_bootstrap(a, b, n_boot=300), ">") == "holds"
    assert stats.verdict(*stats.paired_bootstrap(b, a, n_boot=300), ">") == "reversed"


def test_bootstrap_difference_is_in_percentage_points_and_paired():
    a = np.array([[1, 1, 0, 0], [1, 1, 1, 0]])
    b = np.array([[1, 0, 0, 0], [1, 0, 1, 0]])
    diff, lo, hi = stats.paired_bootstrap(a, b, n_boot=200)
    assert diff == pytest.approx(25.0)
    assert lo <= diff <= hi
    same = stats.paired_bootstrap(a, a, n_boot=50)
    assert same == (0.0, 0.0, 0.0)  # paired: identical sides never differ, whatever the draw


def test_bootstrap_rejects_misaligned_or_empty_sides():
    with pytest.raises(ValueError, match="aligned"):
        stats.paired_bootstrap(np.ones((3, 10)), np.ones((2, 10)))
    with pytest.raises(ValueError, match="no paired results"):
        stats.paired_bootstrap(np.ones((0, 0)), np.ones((0, 0)))


@pytest.mark.parametrize("diff,lo,hi,direction,margin,expected", [
    (5, 2, 8, ">", 1, "holds"),
    (-5, -8, -2, ">", 1, "reversed"),
    (1, -1, 3, ">", 1, "inconclusive"),
    (-5, -8, -2, "<", 1, "holds"),
    (5, 2, 8, "<", 1, "reversed"),
    (0.1, -0.5, 0.8, "≈", 1, "holds"),
    (0.5, -0.5, 1.5, "≈", 1, "inconclusive"),
    (3, 2, 4, "≈", 1, "reversed"),
    (-0.4, -0.8, 0.1, "≥", 1, "holds"),
    (-3, -4, -2, "≥", 1, "reversed"),
    (-1, -2, 0.5, "≥", 1, "inconclusive"),
    (0.4, -0.1, 0.8, "≤", 1, "holds"),
    (3, 2, 4, "≤", 1, "reversed"),
    (math.nan, math.nan, math.nan, ">", 1, "not run"),
])
def test_verdict(diff, lo, hi, direction, margin, expected):
    assert stats.verdict(diff, lo, hi, direction, margin) == expected


def test_verdict_and_claim_reject_an_unknown_direction():
    with pytest.raises(ValueError, match="direction"):
        stats.verdict(1, 0, 2, ">>")
    with pytest.raises(ValueError, match="direction"):
        Claim("x", "x", "s", "f", Side("a"), Side("b"), "=")


def test_mean_ci_is_t_based():
    m, lo, hi = stats.mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and hi - m == pytest.approx(4.303 / math.sqrt(3), rel=1e-3)  # t(2) = 4.303, sd 1
    assert stats.mean_ci([5.0]) == (5.0, 5.0, 5.0)
    assert all(math.isnan(x) for x in stats.mean_ci([]))
    assert stats.t_quantile(30) == pytest.approx(2.042, rel=2e-3)


# --- the registry and the sweep grid -------------------------------------------------------------

def test_claims_have_unique_names_and_cover_the_issue():
    names = [c.name for c in CLAIMS]
    assert len(names) == len(set(names))
    assert len(CLAIMS) >= 18 and sum(c.beyond_log for c in CLAIMS) == 2


def test_the_findings_grid_runs_every_variant_the_claims_need():
    grid = yaml.safe_load((REPO / "findings" / "cpu-quick-grid.yaml").read_text())
    assert set(findings.variants_to_train("cpu-quick")) <= set(grid["variant"])
    assert {"curriculum-mixed", "pos-rcb"}.isdisjoint(grid["variant"])  # twins there: their runs would repeat
    assert grid["seed"] == [0, 1, 2] and grid["fixed"]["preset"] == "cpu-quick"
    effective = sweep.effective_grid(grid, threads=2)
    assert effective["fixed"]["overrides"]["train.threads"] == 2 and "overrides" not in grid["fixed"]
    assert sweep.sweep_name(effective, 2) == "findings-cpu-quick-t2"


def test_every_claim_variant_is_registered():
    missing = sorted(set(claim_variants()) - set(VARIANTS))
    assert not missing, f"lib.config.VARIANTS lacks {missing}"


# --- tidy results from run folders ---------------------------------------------------------------

def _fake_run(root: Path, variant: str, seed: int, solved_at: dict, trained: int = 4, questions: bool = True,
              ema: bool = False, threads: int = 1) -> Path:
    """A run folder as lib.train writes it; solved_at maps iteration -> per-puzzle solved list."""
    from lib.config import make_config

    run = root / f"{variant}-s{seed}"
    run.mkdir(parents=True)
    cfg = make_config("cpu-smoke", variant, {"train.seed": seed, "train.threads": threads}).to_dict()
    cfg["model"]["iterations"], cfg["eval"]["iterations"] = trained, [trained, 2 * trained]
    cfg["code"] = {"code_version": "abc", "commit": "deadbeef"}
    (run / "config.json").write_text(json.dumps(cfg))
    (run / "summary.json").write_text(json.dumps({"status": "complete", "params": 1234, "wall_seconds": 90.0}))
    n = len(next(iter(solved_at.values())))
    rows = []
    for weights in (["ema", "live"] if ema else [None]):
        for it in range(1, 2 * trained + 1):
            solved = solved_at.get(it, [False] * n)
            for p in range(n):
                row = {"puzzle": p, "bucket": "1" if p % 2 else "2", "rating": 0, "deduction_depth": 1,
                       "guesses_full": 0, "iteration": it, "cell_acc": float(solved[p]), "solved": bool(solved[p]),
                       "trained_iterations": trained}
                if questions:
                    row["question"] = f"q{p}"
                if weights:
                    row["weights"] = weights if weights == "ema" else "live"
                rows.append(row)
    frame = pd.DataFrame(rows)
    if ema:  # live weights solve nothing: the EMA side must be told apart
        frame.loc[frame["weights"] == "live", "solved"] = False
    frame.to_parquet(run / "eval.parquet", index=False)
    return run


def test_tidy_results_keeps_the_evaluated_counts_and_the_run_identity(tmp_path):
    n = 6
    runs = [_fake_run(tmp_path, "baseline", s, {4: [True] * n, 8: [True] * n}) for s in (0, 1, 2)]
    runs.append(_fake_run(tmp_path, "no-iteration", 0, {4: [False] * n}))
    (tmp_path / "unfinished").mkdir()
    tidy = findings.tidy_results(runs + [tmp_path / "unfinished"])
    assert len(tidy) == 4 * n * 2  # runs x puzzles x {trained, 2x}; the unfinished folder is skipped
    assert set(tidy["iterations"]) == {4, 8}
    assert set(tidy["puzzle"].astype(str)) == {f"q{p}" for p in range(n)}  # paired on the puzzle itself
    assert tidy["threads"].eq(1).all() and set(tidy["code_version"]) == {"abc"} and set(tidy["commit"]) == {"deadbeef"}
    hashes = tidy.groupby("variant", observed=True)["config_hash"].nunique()
    assert hashes["baseline"] == 1, "seed must not change the config hash"
    first_hash = tidy.groupby("variant", observed=True)["config_hash"].first().astype(str)
    assert first_hash["baseline"] != first_hash["no-iteration"]
    assert tidy["variant"].dtype == "category" and tidy["solved"].dtype == bool and tidy["cell_acc"].dtype == np.float32
    assert findings.seed_table(tidy).loc["baseline"].tolist() == [100.0, 100.0, 100.0]
    cost = findings.cost_table(tidy)
    assert cost.loc["baseline", "runs"] == 3 and cost.loc["baseline", "minutes_per_run"] == 1.5
    assert cost.loc["baseline", "total_minutes"] == 4  # 3 x 1.5 min, rounded


def test_tidy_results_falls_back_to_the_puzzle_index(tmp_path):
    tidy = findings.tidy_results([_fake_run(tmp_path, "baseline", 0, {4: [True, False]}, questions=False)])
    assert set(tidy["puzzle"].astype(str)) == {"0", "1"}


def test_claims_compare_paired_puzzles_and_say_not_run_for_missing_variants(tmp_path):
    n = 40
    runs = [_fake_run(tmp_path, v, s, {4: [True] * n, 8: [True] * n}) for s in (0, 1, 2) for v in ("original", "baseline")]
    runs += [_fake_run(tmp_path, "no-iteration", s, {4: [p % 4 == 0 for p in range(n)]}) for s in (0, 1, 2)]
    tidy = findings.tidy_results(runs)
    table = findings.claim_table(tidy, n_boot=200).set_index("claim")
    by_name = {c.name: c.text for c in CLAIMS}
    iteration = table.loc[by_name["iteration"]]
    assert iteration["verdict"] == "holds" and iteration["n seeds"] == 3
    assert "+75.0pp" in iteration["our figure"]
    assert table.loc[by_name["test-time-iterations"], "verdict"] == "holds"  # 2x iterations: no gain
    assert table.loc[by_name["sam"], "verdict"] == "not run" and table.loc[by_name["sam"], "our figure"] == "—"
    per_bucket = findings.comparisons(tidy, [c for c in CLAIMS if c.name == "iteration"], n_boot=100)
    assert list(per_bucket["bucket"]) == ["1", "2", "all"] and (per_bucket["n puzzles"] == [20, 20, 40]).all()


def test_ema_claim_compares_ema_and_live_weights_of_one_run(tmp_path):
    n = 30
    runs = [_fake_run(tmp_path, "ema", s, {4: [True] * n}, ema=True) for s in (0, 1, 2)]
    tidy = findings.tidy_results(runs)
    ema_claim = [c for c in CLAIMS if c.name == "ema"]
    row = findings.comparisons(tidy, ema_claim, n_boot=100).set_index("bucket").loc["all"]
    assert row["A solved %"] == 100 and row["B solved %"] == 0 and row["verdict"] == "reversed"


def test_a_variant_equal_to_the_baseline_reads_the_baselines_runs(tmp_path):
    assert "cpu-smoke" in VARIANTS["curriculum-reverse"].twin_on
    n = 20
    plateau = [_fake_run(tmp_path, "curriculum-plateau", s, {4: [True] * n}) for s in (0, 1, 2)]
    base = [_fake_run(tmp_path, "baseline", s, {4: [p % 2 == 0 for p in range(n)]}) for s in (0, 1, 2)]
    claim = next(c for c in CLAIMS if c.name == "plateau")  # curriculum-plateau vs curriculum-reverse
    row = findings.claim_table(findings.tidy_results(plateau + base), [claim], n_boot=50).iloc[0]
    assert "+50.0pp" in row["our figure"] and row["n seeds"] == 3
    assert "curriculum-reverse runs baseline's config on cpu-smoke" in row["note"]
    own = [_fake_run(tmp_path / "own", "curriculum-reverse", s, {4: [True] * n}) for s in (0, 1, 2)]
    row = findings.claim_table(findings.tidy_results(plateau + base + own), [claim], n_boot=50).iloc[0]
    assert "+0.0pp" in row["our figure"] and "baseline's config" not in row["note"]  # its own runs win
    assert "curriculum-reverse" not in findings.variants_to_train("cpu-smoke")
    assert "curriculum-mixed" not in findings.variants_to_train("cpu-quick")
    # two paths through the log that meet: the recipe with row/col/box positions is no-x-after-init
    assert config_twin("cpu-quick", "pos-rcb", ["baseline", "no-x-after-init"]) == "no-x-after-init"
    assert config_twin("cpu-quick", "pos-rcb", ["baseline", "original"]) == "pos-rcb"
    assert "pos-rcb" not in findings.variants_to_train("cpu-quick")
    rcb = [_fake_run(tmp_path / "rcb", v, s, {4: [True] * n}) for v in ("no-x-after-init", "pos-rcb") for s in (0, 1, 2)]
    claim = next(c for c in CLAIMS if c.name == "rope-vs-rcb")
    row = findings.claim_table(findings.tidy_results(base + rcb), [claim], n_boot=50).iloc[0]
    assert "pos-rcb runs the same config as no-x-after-init on cpu-smoke" in row["note"]


def test_collect_keeps_the_committed_runs_no_folder_retrained(tmp_path):
    n = 8
    old = [_fake_run(tmp_path / "old", "baseline", s, {4: [False] * n}) for s in (0, 1)]
    committed = findings.tidy_results(old)
    new = [_fake_run(tmp_path / "new", "baseline", 1, {4: [True] * n}),
           _fake_run(tmp_path / "new", "no-iteration", 0, {4: [True] * n})]
    out = tmp_path / "results.parquet"
    findings.collect(new, str(out), committed)
    tidy = findings.read_results(out)
    solved = tidy[tidy["iterations"] == 4].groupby(["variant", "seed"], observed=True)["solved"].mean()
    assert solved.to_dict() == {("baseline", 0): 0.0, ("baseline", 1): 1.0, ("no-iteration", 0): 1.0}
    assert tidy["variant"].dtype == "category" and tidy["run"].nunique() == 3


def test_only_runs_the_current_code_would_make_again_count_as_committed(tmp_path):
    from lib.config import make_config
    from lib.provenance import code_identity

    tidy = findings.tidy_results([_fake_run(tmp_path, "baseline", 2, {4: [True] * 4})]).astype(
        {"config_hash": str, "code_version": str})
    tidy["config_hash"] = findings.config_hash(make_config("cpu-smoke", "baseline", {"train.seed": 2}).to_dict())
    tidy["code_version"] = code_identity()["code_version"]
    assert len(findings.current_runs(tidy)) == len(tidy)
    assert findings.current_runs(tidy.assign(code_version="r0")).empty  # other code
    assert findings.current_runs(tidy.assign(threads=2)).empty  # the config differs in its thread count
    assert sweep._job_key({"variants": ["gelu"], "seeds": [2], "preset": "cpu-quick"}) == ("gelu", 2)


def test_mixed_thread_counts_are_noted(tmp_path):
    n = 10
    runs = [_fake_run(tmp_path / "a", "original", 0, {4: [True] * n}, threads=1),
            _fake_run(tmp_path / "b", "no-iteration", 0, {4: [False] * n}, threads=2)]
    table = findings.claim_table(findings.tidy_results(runs), n_boot=50)
    assert "different thread counts" in table.iloc[0]["note"]
    assert table.iloc[0]["note"].startswith("provisional: 1 of the 3 seeds")  # one seed is not a finding yet


def test_duplicate_runs_of_a_seed_are_noted(tmp_path):
    n = 10
    runs = [_fake_run(tmp_path / "a", "original", 0, {4: [True] * n}),
            _fake_run(tmp_path / "b", "original", 0, {4: [False] * n}),
            _fake_run(tmp_path / "a", "no-iteration", 0, {4: [False] * n})]
    row = findings.claim_table(findings.tidy_results(runs), n_boot=50).iloc[0]
    assert "original has several runs of one seed" in row["note"] and "+50.0pp" in row["our figure"]


def test_no_results_means_every_claim_is_not_run(tmp_path):
    tidy = findings.read_results(tmp_path / "missing.parquet")
    table = findings.claim_table(tidy)
    assert len(table) == len(CLAIMS) and (table["verdict"] == "not run").all()
    assert findings.variant_table(tidy).empty


def test_findings_md_holds_the_table_and_the_command(tmp_path):
    table = findings.claim_table(findings.read_results(FIXTURE), n_boot=100)
    path = findings.write_findings_md(table, tmp_path / "FINDINGS.md", "make findings")
    text = path.read_text()
    assert "make findings" in text and "| claim |" in text and text.count("\n| ") == len(CLAIMS) + 1


def test_smoke_runs_never_write_the_repository_findings(tmp_path):
    assert findings.findings_md_path("auto", "cpu-quick", "", tmp_path) == REPO / "FINDINGS.md"
    assert findings.findings_md_path("auto", "cpu-smoke", "", tmp_path) == tmp_path / "FINDINGS.md"
    assert findings.findings_md_path("auto", "cpu-quick", "x.parquet", tmp_path) == tmp_path / "FINDINGS.md"
    assert findings.findings_md_path("", "cpu-quick", "", tmp_path) is None


# --- reproducing committed results ---------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    """One tiny committed run (trained once for the module): its results parquet and the overrides it used."""
    from lib.config import make_config
    from lib.train import train

    root = tmp_path_factory.mktemp("committed")
    overrides = {"train.steps": 12, "train.eval_every": 12, "train.checkpoint_every": 12, "schedule.warmup_steps": 1}
    train(make_config("cpu-smoke", "baseline", {"train.seed": 3, "train.threads": 1, **overrides}), root / "run",
          progress=False)
    results = root / "results.parquet"
    findings.tidy_results([root / "run"]).to_parquet(results, index=False)
    return results, overrides


def test_reproduce_retrains_a_committed_run_to_the_same_per_puzzle_results(smoke_results, tmp_path):
    results, overrides = smoke_results
    assert findings.reproduce(results, "baseline", 3, tmp_path / "again", overrides).empty
    committed, retrained = pd.read_parquet(results), findings.tidy_results([tmp_path / "again"])
    committed.loc[0, "solved"] = not committed.loc[0, "solved"]  # one committed result that no training made
    differ = findings.per_puzzle_differences(committed, retrained)
    assert len(differ) == 1 and differ.loc[0, "puzzle"] == str(committed.loc[0, "puzzle"])
    assert len(findings.per_puzzle_differences(committed.iloc[1:], retrained)) == 1  # a row one side lacks


def test_reproduce_refuses_results_it_cannot_reproduce(smoke_results, tmp_path):
    results, overrides = smoke_results
    with pytest.raises(ValueError, match="no run of baseline seed 4"):
        findings.reproduce(results, "baseline", 4, tmp_path / "x", overrides)
    with pytest.raises(ValueError, match="another config"):
        findings.reproduce(results, "baseline", 3, tmp_path / "x", {**overrides, "train.steps": 3})
    other = pd.read_parquet(results).astype({"code_version": str})
    other["code_version"] = "0123456789abcdef"
    other.to_parquet(tmp_path / "other.parquet", index=False)
    with pytest.raises(ValueError, match="made by code 0123456789abcdef"):
        findings.reproduce(tmp_path / "other.parquet", "baseline", 3, tmp_path / "x", overrides)
    assert "Stale: 1 of 1 runs" in findings.code_status(other)
    assert not (tmp_path / "x").exists()  # refused before training


def test_findings_md_says_whether_the_committed_results_are_the_current_codes():
    """FINDINGS.md may not claim current results for another code's runs: it states what code_status finds,
    so a change to lib's result modules shows up there as stale until `make findings` retrains."""
    committed = findings.read_results(REPO / "findings" / "cpu-quick.parquet")
    assert findings.code_status(committed) in (REPO / "FINDINGS.md").read_text()


# --- the notebook --------------------------------------------------------------------------------

def test_findings_notebook_renders_the_fixture(tmp_path):
    from lib import runner

    md = tmp_path / "FINDINGS.md"
    run = runner.run_notebook(REPO / "notebooks" / "10_findings.ipynb",
                                {"results_path": str(FIXTURE), "findings_md": str(md), "n_boot": 200},
                                name="fixture", out_root=tmp_path / "outputs")
    text = md.read_text()
    assert "holds" in text and "not run" in text and "tests/fixtures/findings-cpu-smoke.parquet" in text
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["verdicts"]["not run"] < len(CLAIMS)
    assert set(summary["params"]) == set(runner.notebook_parameters(REPO / "notebooks" / "10_findings.ipynb"))
    assert {"baseline:all", "no-iteration:1"} <= set(summary["solved_final"])
    assert "data:image/png;base64" in (run / "report-noinput.html").read_text()


def test_findings_notebook_without_results_says_not_run(tmp_path):
    from lib import runner

    md = tmp_path / "FINDINGS.md"
    runner.run_notebook(REPO / "notebooks" / "10_findings.ipynb",
                          {"results_path": str(tmp_path / "missing.parquet"), "findings_md": str(md)},
                          name="empty", out_root=tmp_path / "outputs")
    assert f"**0 holds, 0 reversed, 0 inconclusive, {len(CLAIMS)} not run.**" in md.read_text()


def test_the_weight_decay_note_states_the_schedules_dose():
    from lib.config import make_config
    from lib.schedule import lr_at

    note = next(c for c in CLAIMS if c.name == "weight-decay").notes["cpu-quick"]
    for preset in ("cpu-quick", "gpu-paper"):
        cfg = make_config(preset, "wd-1.0")
        dose = cfg.optim.weight_decay * sum(lr_at(s, cfg) for s in range(cfg.train.steps))
        assert f"e^-{dose:.2g}" in note, (preset, dose)


def test_the_ema_note_states_how_much_of_the_start_the_average_keeps():
    from lib.config import make_config

    note = next(c for c in CLAIMS if c.name == "ema").notes["cpu-quick"]
    quick, paper = (make_config(p, "ema") for p in ("cpu-quick", "gpu-paper"))
    assert quick.optim.ema_decay == paper.optim.ema_decay == 0.999  # unscaled: the note's premise
    assert f"{quick.optim.ema_decay ** quick.train.steps:.0%} in it" in note
    assert f"= {paper.optim.ema_decay ** paper.train.steps:.0e} over" in note
    ratio_kept = 1 - (1 - paper.optim.ema_decay) * paper.train.steps / quick.train.steps
    assert f"decay {ratio_kept:.3f}" in note
