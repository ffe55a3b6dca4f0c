"""The claim checker: the registry, the adaptive seed plan, tidy results from run folders, claims against them,
the findings notebook. The interval and the verdict rules are tests/test_stats.py's."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lib import findings
from lib.config import VARIANTS
from lib import sweep
from lib.claims import CLAIMS, SEQUEL_CLAIMS, Claim, Side, claim_variants, claims_for
from lib.config import config_twin

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "findings-cpu-smoke.parquet"


# --- the registry and the sweep grid -------------------------------------------------------------

def test_claims_have_unique_names_and_cover_the_issues():
    names = [c.name for c in CLAIMS + SEQUEL_CLAIMS]
    assert len(names) == len(set(names))
    assert len(CLAIMS) >= 18 and sum(c.beyond_log for c in CLAIMS) == 2
    assert len(SEQUEL_CLAIMS) >= 9 and all(c.a.iterations_x > 1 for c in SEQUEL_CLAIMS)
    assert claims_for("cpu-iters") is SEQUEL_CLAIMS and claims_for("gpu-iters") is SEQUEL_CLAIMS
    assert claims_for("cpu-quick") is CLAIMS
    # every variant a claim compares differs from the other side on the preset that judges it
    for preset, claims in (("cpu-quick", CLAIMS), ("cpu-iters", SEQUEL_CLAIMS)):
        for c in claims:
            a, b = (findings.trains_as(preset, s.variant) for s in (c.a, c.b))
            assert a != b or c.a != c.b, f"{c.name}: both sides run one config on {preset}"


def _tidy_with(tmp_path, per_variant: dict, n: int = 20) -> pd.DataFrame:
    """Fake cpu-smoke runs: variant -> {seed: solved share} (the first share x n puzzles solved)."""
    runs = [_fake_run(tmp_path, v, seed, {4: [p < share * n for p in range(n)]})
            for v, seeds in per_variant.items() for seed, share in seeds.items()]
    return findings.tidy_results(runs)


def test_the_plan_starts_every_variant_with_5_seeds_cheapest_claims_first():
    plan = findings.seed_plan(findings.read_results("/nonexistent.parquet"), "cpu-quick")
    assert (plan["action"] == "start").all() and len(plan) == len(CLAIMS)
    grid = findings.plan_grid(plan, "cpu-quick")
    jobs = [(j["variant"], j["seed"]) for j in grid["jobs"]]
    assert len(jobs) == len(set(jobs)) == 5 * len(findings.variants_to_train("cpu-quick"))
    assert grid["fixed"] == {"preset": "cpu-quick"}
    order = list(dict.fromkeys(v for v, _ in jobs))
    costs = plan.set_index("claim")["cost"]
    assert costs.min() > 0 and findings.run_cost("cpu-quick", "sam") > 1.5  # SAM's second pass
    first = plan.loc[plan["cost"].idxmin()]
    assert order[0] in first["variants"]  # a cut-short sweep has finished the cheapest claim first
    expanded = sweep.expand_grid(sweep.effective_grid(grid, threads=1), {"preset": 0, "variants": 0, "seeds": 0,
                                                                         "overrides": 0})
    assert expanded[0]["variants"] == [jobs[0][0]] and expanded[0]["overrides"] == {"train.threads": 1}


def test_the_plan_adds_seeds_only_where_the_interval_straddles_and_more_would_decide(tmp_path):
    claim = Claim("x", a=Side("original"), b=Side("no-iteration"), direction=">")
    five = range(5)
    # decided: A solves every puzzle, B none
    decided = _tidy_with(tmp_path / "d", {"original": {s: 1.0 for s in five}, "no-iteration": {s: 0.0 for s in five}})
    row = findings.seed_plan(decided, "cpu-smoke", [claim]).iloc[0]
    assert row["action"] == "decided at 5 seeds" and row["jobs"] == []
    # undecided, but seeds agree enough that 10 would decide: two more each
    close = _tidy_with(tmp_path / "c", {"original": {0: .55, 1: .7, 2: .5, 3: .65, 4: .6},
                                        "no-iteration": {0: .6, 1: .45, 2: .5, 3: .5, 4: .45}}, n=200)
    row = findings.seed_plan(close, "cpu-smoke", [claim]).iloc[0]
    compared = findings.compare(close, claim)
    overall = compared.set_index("bucket").loc["all"]
    assert not overall["decided"] and overall["decided at 10 seeds"]
    assert row["action"] == "undecided: more seeds"
    assert sorted(row["jobs"]) == [("no-iteration", 5), ("no-iteration", 6), ("original", 5), ("original", 6)]
    # a null: 10 seeds would not decide it either, so no more are spent
    null = _tidy_with(tmp_path / "n", {"original": {0: .3, 1: .9, 2: .5, 3: .1, 4: .6},
                                       "no-iteration": {0: .6, 1: .2, 2: .5, 3: .8, 4: .4}})
    row = findings.seed_plan(null, "cpu-smoke", [claim]).iloc[0]
    assert row["action"] == "undecided, and 10 seeds would not decide it" and row["jobs"] == []
    assert "3 runs to train" not in findings.plan_text(findings.seed_plan(null, "cpu-smoke", [claim]))


def test_a_sweep_of_the_plan_trains_what_it_asks_then_collects(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(sweep, "run_sweep", lambda nb, grid, **kw: calls.append(yaml.safe_load(Path(grid).read_text()))
                        or pd.DataFrame({"name": ["x"], "status": ["ok"], "error": [""]}))
    monkeypatch.setattr(sweep, "OUTPUTS", tmp_path)
    monkeypatch.setattr(findings, "collect", lambda dirs, out, committed: Path(out))
    sweep.findings_sweep("cpu-quick", "notebooks/01_baseline.ipynb", 1, 1, str(tmp_path / "r.parquet"), max_runs=3)
    assert len(calls) == 1 and len(calls[0]["jobs"]) == 3  # a slice: the plan's first 3 runs
    assert calls[0]["fixed"] == {"preset": "cpu-quick", "overrides": {"train.threads": 1}}


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
    table = findings.claim_table(tidy).set_index("claim")
    by_name = {c.name: c.text for c in CLAIMS}
    iteration = table.loc[by_name["iteration"]]
    assert iteration["verdict"] == "holds" and iteration["n seeds"] == 3
    assert "+75.0pp" in iteration["our figure"]
    assert table.loc[by_name["test-time-iterations"], "verdict"] == "holds"  # 2x iterations: no gain
    assert table.loc[by_name["sam"], "verdict"] == "not run" and table.loc[by_name["sam"], "our figure"] == "—"
    per_bucket = findings.comparisons(tidy, [c for c in CLAIMS if c.name == "iteration"])
    assert list(per_bucket["bucket"]) == ["1", "2", "all"] and (per_bucket["n puzzles"] == [20, 20, 40]).all()


def test_ema_claim_compares_ema_and_live_weights_of_one_run(tmp_path):
    n = 30
    runs = [_fake_run(tmp_path, "ema", s, {4: [True] * n}, ema=True) for s in (0, 1, 2)]
    tidy = findings.tidy_results(runs)
    ema_claim = [c for c in CLAIMS if c.name == "ema"]
    row = findings.comparisons(tidy, ema_claim).set_index("bucket").loc["all"]
    assert row["A solved %"] == 100 and row["B solved %"] == 0 and row["verdict"] == "reversed"


def test_a_variant_that_runs_anothers_config_reads_its_runs(tmp_path):
    """On cpu-smoke (two curriculum buckets) the sequel's 3-phase schedule is its 4-phase control's."""
    assert config_twin("cpu-smoke", "iters-3phase-50k") == "iters-bs2048"
    n = 20
    claim = Claim("t", a=Side("iters-3phase-50k"), b=Side("baseline"), direction=">")
    control = [_fake_run(tmp_path, "iters-bs2048", s, {4: [True] * n}) for s in (0, 1, 2)]
    base = [_fake_run(tmp_path, "baseline", s, {4: [p % 2 == 0 for p in range(n)]}) for s in (0, 1, 2)]
    row = findings.claim_table(findings.tidy_results(control + base), [claim]).iloc[0]
    assert "+50.0pp" in row["our figure"] and row["n seeds"] == 3
    assert "iters-3phase-50k runs iters-bs2048's config on cpu-smoke" in row["note"]
    own = [_fake_run(tmp_path / "own", "iters-3phase-50k", s, {4: [p % 2 == 0 for p in range(n)]}) for s in (0, 1, 2)]
    row = findings.claim_table(findings.tidy_results(control + base + own), [claim]).iloc[0]
    assert "+0.0pp" in row["our figure"] and "iters-bs2048's config" not in row["note"]  # its own runs win
    assert findings.trains_as("cpu-iters", "steps-50k") == "baseline"  # the sequel trains 50K steps already


def test_a_claim_beyond_the_trained_count_reports_each_seeds_collapse(tmp_path):
    n = 10
    climbing = {4: [p < 5 for p in range(n)], 8: [True] * n}
    falling = {4: [True] * n, 8: [p < 2 for p in range(n)]}
    runs = [_fake_run(tmp_path, "iters-lr2e3", s, climbing) for s in (0, 1)]
    runs += [_fake_run(tmp_path, "iters-lr3e3", s, falling) for s in (0, 1)]
    claim = Claim("c", a=Side("iters-lr2e3", iterations_x=2), b=Side("iters-lr3e3", iterations_x=2), direction=">")
    row = findings.claim_table(findings.tidy_results(runs), [claim]).iloc[0]
    assert row["collapses at (A; B)"] == "none, none; 8, 8" and "+80.0pp" in row["our figure"]


def test_a_collapsed_seed_is_flagged_and_per_seed_differences_are_shown(tmp_path):
    shares = {s: 0.9 for s in range(5)}
    tidy = _tidy_with(tmp_path, {"original": {**shares, 3: 0.1}, "no-iteration": {s: 0.0 for s in range(5)}})
    row = findings.claim_table(tidy, [c for c in CLAIMS if c.name == "iteration"]).iloc[0]
    assert "original seed 3 collapsed (10.0% vs its siblings' median 90.0%)" in row["note"]
    assert row["per seed A - B (pp)"] == "+90.0, +90.0, +90.0, +10.0, +90.0"


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
    table = findings.claim_table(findings.tidy_results(runs))
    assert "different thread counts" in table.iloc[0]["note"]
    assert table.iloc[0]["note"].startswith("provisional: 1 of the 5 seeds")  # one seed is not a finding yet


def test_duplicate_runs_of_a_seed_are_noted(tmp_path):
    n = 10
    runs = [_fake_run(tmp_path / "a", "original", 0, {4: [True] * n}),
            _fake_run(tmp_path / "b", "original", 0, {4: [False] * n}),
            _fake_run(tmp_path / "a", "no-iteration", 0, {4: [False] * n})]
    row = findings.claim_table(findings.tidy_results(runs)).iloc[0]
    assert "original has several runs of one seed" in row["note"] and "+50.0pp" in row["our figure"]


def test_no_results_means_every_claim_is_not_run(tmp_path):
    tidy = findings.read_results(tmp_path / "missing.parquet")
    table = findings.claim_table(tidy)
    assert len(table) == len(CLAIMS) and (table["verdict"] == "not run").all()
    assert findings.variant_table(tidy).empty


def test_findings_md_holds_the_table_the_seeds_and_the_command(tmp_path):
    tidy = findings.read_results(FIXTURE)
    table = findings.claim_table(tidy)
    path = findings.write_findings_md(table, tmp_path / "FINDINGS.md", "make findings", plan=findings.seed_plan(tidy, "cpu-smoke"))
    text = path.read_text()
    assert "make findings" in text and "| claim |" in text and "## Seeds per claim" in text
    assert text.count("\n| ") == 2 * (len(CLAIMS) + 1)  # the claim table and the seeds table
    assert "per seed A - B (pp)" in text and "log's effect" in text


def test_smoke_runs_never_write_the_repository_findings(tmp_path):
    assert findings.findings_md_path("auto", "cpu-quick", "", tmp_path) == REPO / "FINDINGS.md"
    assert findings.findings_md_path("auto", "cpu-iters", "", tmp_path) == REPO / "FINDINGS-sequel.md"
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
                                {"results_path": str(FIXTURE), "findings_md": str(md)},
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
    assert f"**0 holds, 0 reversed, 0 inconclusive, {len(CLAIMS)} not run, 0 not testable here.**" in md.read_text()


def test_the_weight_decay_note_states_the_dose_kept():
    from lib.config import lr_sum, flatten, make_config

    claim = next(c for c in CLAIMS if c.name == "weight-decay")
    quick, paper = (make_config(p, "wd-1.0") for p in ("cpu-quick", "gpu-paper"))
    dose = lambda cfg: cfg.optim.weight_decay * lr_sum(flatten(cfg.to_dict()))
    assert dose(quick) == pytest.approx(dose(paper), rel=1e-9)  # the claim's premise: the same shrinkage
    note = claim.note("cpu-quick", make_config("cpu-quick"))
    assert f"wd {make_config('cpu-quick').optim.weight_decay:.3g} and {quick.optim.weight_decay:.3g} here" in note
    assert claim.note("gpu-paper", make_config("gpu-paper")) == ""
