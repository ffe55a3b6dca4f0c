"""The shell: notebook conventions, parameters checked before a kernel starts, reuse by config and code,
result tables, progress lines, the index and the command line."""
import ast
import json
import re
import tomllib
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from lib.workbook import cli, results, runner, workbook
from lib import files
from lib.config import ConfigError, flatten
from lib.experiments.resolve import VARIANTS, make_config
from lib.provenance import code_identity

REPO = Path(__file__).resolve().parent.parent
ALL_NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
NOTEBOOKS = [p for p in ALL_NOTEBOOKS if p.name.startswith("0")]  # the experiment families (not the findings)
BASELINE = REPO / "notebooks" / "01_baseline.ipynb"


def code_cells(path: Path) -> list:
    return [c for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code"]


# --- notebook conventions ------------------------------------------------------------------------

def test_there_is_a_notebook_per_family():
    assert NOTEBOOKS[0].name == "01_baseline.ipynb"
    assert len(NOTEBOOKS) >= 6


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean_and_thin(path):
    nb = nbformat.read(str(path), as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = code_cells(path)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "committed with outputs"
    assert len([c for c in code if "parameters" in c.metadata.get("tags", [])]) == 1
    source = "\n".join(c.source for c in code)
    assert not re.search(r"^\s*(def|class) ", source, re.M), "logic belongs in lib/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_one_import_line_and_no_family_name(path):
    source = "\n".join(c.source for c in code_cells(path))
    assert len(re.findall(r"^\s*(?:from|import) ", source, re.M)) == 1, "one import line"
    assert "family=" not in source, "the family comes from the notebook's file name"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_are_typed_and_documented(path):
    params = runner.notebook_parameters(path)
    for name in ("preset", "seeds", "device", "output_dir", "overrides", "reuse"):
        assert name in params, f"{path.name} lacks parameter {name}"
        assert params[name]["inferred_type_name"] != "None", name
        assert params[name]["help"], f"{name} has no comment"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_finish_receives_every_parameter(path):
    calls = [n for c in code_cells(path) if "workbook.finish" in c.source for n in ast.walk(ast.parse(c.source))
             if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "finish"]
    assert len(calls) == 1
    passed = calls[0].args[2]
    assert isinstance(passed, ast.Call) and passed.func.id == "dict"
    assert {k.arg for k in passed.keywords} == set(runner.notebook_parameters(path))


def test_family_names():
    assert workbook.family_of("notebooks/01_baseline.ipynb") == "baseline"
    assert workbook.family_of("05_curriculum.ipynb") == "curriculum"
    assert workbook.family_of("scratch.ipynb") == "scratch"


def test_prepare_without_output_dir_names_the_folder_it_chose(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(workbook, "OUTPUTS", tmp_path)
    monkeypatch.setenv("JPY_SESSION_NAME", str(REPO / "notebooks" / "04_optimisation.ipynb"))
    assert workbook.prepare("") == tmp_path / "optimisation" / "lab"
    monkeypatch.delenv("JPY_SESSION_NAME")
    assert workbook.prepare("") == tmp_path / "scratch" / "lab"
    assert "writing to" in capsys.readouterr().out


# --- parameters --------------------------------------------------------------------------------

def test_params_from_yaml_file_and_pairs_arrive_typed(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("seeds: [0, 1]\nreuse: false\npreset: cpu-smoke\n")
    params = cli.parse_params([["reuse", "true"], ["overrides", "{train.steps: 5}"]], [str(f)])
    assert params == {"seeds": [0, 1], "reuse": True, "preset": "cpu-smoke", "overrides": {"train.steps": 5}}
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="YAML mapping"):
        cli.parse_params(None, [str(bad)])


@pytest.mark.parametrize("params, message", [
    ({"presett": "x"}, r"no parameter\(s\) presett"),
    ({"preset": "nope"}, "unknown preset 'nope'"),
    ({"variant": "no-such-variant"}, "unknown variant 'no-such-variant'"),
    ({"seeds": 3}, "seeds must be list"),
    ({"device": 1}, "device must be str"),
    ({"reuse": "sometimes"}, "reuse must be true, false or \"config-only\""),
    ({"overrides": {"train.stepz": 3}}, "unknown config key 'train.stepz'"),
    ({"overrides": {"train.steps": "many"}}, "train.steps: cannot read 'many'"),
])
def test_bad_parameters_are_refused_before_a_kernel_starts(params, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        runner.run_notebook(BASELINE, params, out_root=tmp_path)
    assert not any(tmp_path.iterdir()), "nothing may be written for a refused run"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebooks_defaults_pass_the_check(path):
    """A notebook opened in JupyterLab runs its defaults: a variant renamed or removed must not linger there."""
    runner.validate_parameters(path, {})


def test_good_parameters_pass_the_check():
    runner.validate_parameters(BASELINE, {"preset": "cpu-smoke", "seeds": [0, 1], "reuse": "config-only"})
    runner.validate_parameters(REPO / "notebooks" / "02_iterations.ipynb", {"variants": ["baseline", "sam"]})


def test_cli_reports_a_bad_parameter_in_one_line_with_status_2(capsys):
    assert cli.main(["run", str(BASELINE), "-p", "preset", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown preset 'nope'") and err.count("\n") == 1


def test_cli_train_refuses_a_folder_that_holds_a_run(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    assert cli.main(["train", "--preset", "cpu-smoke", "--out", str(tmp_path)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_variants_command_prints_resolved_overrides(capsys):
    assert cli.main(["variants", "--preset", "cpu-smoke"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert set(lines) == set(VARIANTS)
    assert lines["baseline"].endswith("[-]")
    resolved = make_config("cpu-smoke", "iterations-32").model.iterations  # scaled to the preset, not 32
    assert resolved != 32 and f"model.iterations={resolved}" in lines["iterations-32"]


def test_resolved_overrides_are_exactly_the_differences():
    base, sam = (flatten(make_config("cpu-quick", v).to_dict()) for v in ("baseline", "sam"))
    changed = cli.resolved_overrides("cpu-quick", "sam")
    assert changed and all(sam[k] == v != base[k] for k, v in changed.items())
    assert {k for k in sam if sam[k] != base[k]} - {"variant"} == set(changed)


# --- reuse by config and code --------------------------------------------------------------------

def fake_run(run: Path, cfg, code_version: str | None, status: str | None = "complete", checkpoint: bool = False,
             solved: float = 0.5) -> Path:
    """A run folder written by hand, shaped like train.py's: config.json (+ "code"), summary.json, metrics."""
    config = cfg.to_dict() | ({"code": {"code_version": code_version, "commit": "abc"}} if code_version else {})
    files.write_json(run / "config.json", config)
    if status:
        files.write_json(run / "summary.json", {"status": status, "grid_size": cfg.data.grid_size, "steps": 10,
                                                "wall_seconds": 1.0, "final": {"all": 100 * solved}})
    if checkpoint:
        files.write_text(run / "checkpoints" / "last.pt", "")
    its = cfg.model.iterations
    rows = [{"step": 10, "split": "train", "bucket": "all", "metric": "loss", "value": 1.0, "iterations": None}]
    rows += [{"step": 10, "split": "test", "bucket": b, "metric": m, "value": solved, "iterations": its}
             for b in ("0", "all") for m in ("solved", "cell_acc")]
    files.write_text(run / "metrics.jsonl", "".join(json.dumps(r | {"seed": cfg.train.seed}) + "\n" for r in rows))
    return run


HERE = code_identity()["code_version"]


@pytest.mark.parametrize("code, status, checkpoint, reuse, action", [
    (HERE, "complete", False, True, "reuse"),
    ("0ther", "complete", False, True, "train"),  # a bug fix in lib/ must not reuse the buggy code's result
    (None, "complete", False, True, "train"),  # no recorded code: unknown, not a match
    ("0ther", "complete", False, "config-only", "reuse"),
    (None, "complete", False, "config-only", "reuse"),
    (HERE, "complete", False, False, "train"),
    (HERE, None, True, True, "resume"),  # killed
    ("0ther", None, True, True, "train"),  # never resume another code's checkpoint
    ("0ther", None, True, "config-only", "train"),
    (HERE, None, False, True, "train"),
])
def test_reuse_needs_the_same_config_and_code(code, status, checkpoint, reuse, action, tmp_path):
    cfg = workbook.config_for("cpu-smoke")
    fake_run(tmp_path, cfg, code, status, checkpoint)
    assert workbook.reuse_action(tmp_path, cfg, HERE, reuse) == action
    other_config = workbook.config_for("cpu-smoke", seed=1)
    assert workbook.reuse_action(tmp_path, other_config, HERE, reuse) == "train"


def test_train_runs_retrains_other_code_and_reuses_its_own(tmp_path, monkeypatch):
    import lib.train

    calls = []
    monkeypatch.setattr(lib.train, "train", lambda cfg, out, resume, progress: calls.append((out.name, resume)))
    runs = tmp_path / "runs"
    fake_run(runs / "baseline-s0", workbook.config_for("cpu-smoke", seed=0), HERE)
    fake_run(runs / "baseline-s1", workbook.config_for("cpu-smoke", seed=1), "0ther")
    fake_run(runs / "baseline-s2", workbook.config_for("cpu-smoke", seed=2), HERE, status=None, checkpoint=True)
    dirs = workbook.train_runs("cpu-smoke", ["baseline"], [0, 1, 2], tmp_path, progress=False)
    assert [d.name for d in dirs] == ["baseline-s0", "baseline-s1", "baseline-s2"]
    assert calls == [("baseline-s1", False), ("baseline-s2", True)]
    assert not (runs / "baseline-s1").exists(), "a fresh start removes the other code's folder"
    with pytest.raises(ConfigError, match="reuse must be"):
        workbook.train_runs("cpu-smoke", ["baseline"], [0], tmp_path, reuse="yes")


# --- result tables -------------------------------------------------------------------------------

@pytest.fixture
def mixed_results(tmp_path) -> results.Results:
    """Seed 0 from this code, seed 1 from other code, seed 2 from before runs recorded their code."""
    dirs = [fake_run(tmp_path / f"baseline-s{s}", workbook.config_for("cpu-smoke", seed=s), code, solved=solved)
            for s, code, solved in ((0, HERE, 0.5), (1, "0ther", 0.25), (2, None, 1.0))]
    return results.collect(dirs)


def test_runs_from_other_code_are_marked_in_every_table(mixed_results):
    runs = results.runs_table(mixed_results).set_index("run")
    assert runs["code"].to_dict() == {"baseline-s0": "this code", "baseline-s1": "other code",
                                      "baseline-s2": "unknown code"}
    ratings = results.rating_table(mixed_results)
    assert set(ratings.index.get_level_values("variant")) == {"baseline", "baseline [other code]",
                                                             "baseline [unknown code]"}
    assert ratings.loc[("baseline [other code]", "all"), "solved % (final)"] == 25.0  # never averaged with ours
    assert results.runs_from_other_code(mixed_results) == ["baseline-s1", "baseline-s2"]


def test_finish_records_parameters_code_and_marks(mixed_results, tmp_path, capsys):
    out = tmp_path / "baseline" / "run-x"
    params = {"preset": "cpu-smoke", "reuse": "config-only"}
    summary = workbook.finish(out, mixed_results, params)
    assert files.read_json(out / "summary.json") == json.loads(json.dumps(summary))
    assert summary["params"] == params and summary["code"] == code_identity()
    assert summary["runs_from_other_code"] == ["baseline-s1", "baseline-s2"]
    assert summary["solved_final"]["baseline [other code]:all"] == 25.0
    assert "summary written to" in capsys.readouterr().out


def test_title_names_the_scale(mixed_results):
    assert mixed_results.title.startswith("4x4 generated, buckets by")
    assert "cpu-smoke" in mixed_results.title


def test_config_diff_ignores_the_code_entry(mixed_results):
    diff = results.config_diff(mixed_results)
    assert "train.seed" in diff.index and not any(k.startswith("code.") for k in diff.index)


def test_failure_table_counts_lost_and_drifting_puzzles():
    rows = []
    # puzzle 0: solved at iteration 1, lost at 2; puzzle 1: solved throughout; puzzle 2: never solved, best at 1
    for puzzle, accs, solved in [(0, [1.0, 0.8], [True, False]), (1, [1.0, 1.0], [True, True]),
                                 (2, [0.7, 0.5], [False, False])]:
        for it, (acc, ok) in enumerate(zip(accs, solved), start=1):
            rows.append(dict(variant="v", seed=0, bucket="1", puzzle=puzzle, iteration=it, cell_acc=acc, solved=ok,
                             trained_iterations=2))
    rows.append(dict(variant="v", seed=0, bucket="1", puzzle=2, iteration=3, cell_acc=1.0, solved=True,
                     trained_iterations=2))  # beyond the trained count: ignored
    res = results.Results(pd.DataFrame(), pd.DataFrame(rows), pd.DataFrame(), {})
    row = results.failure_table(res).loc[("v", "1")]
    assert row["unsolved puzzles (all seeds)"] == 2 and row["unsolved %"] == pytest.approx(66.7, abs=0.1)
    assert row["solved earlier, lost %"] == 50.0 and row["peaked early %"] == 100.0
    assert row["best iteration of the unsolved"] == 1.0


# --- progress, index ---------------------------------------------------------------------------

def test_progress_names_the_cell_and_the_training_step_with_eta(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t")] + [nbformat.v4.new_code_cell("x") for _ in range(3)]
    for cell, status in zip(nb.cells[1:], ("completed", "running", "pending")):
        cell.metadata["papermill"] = {"status": status}
    nbformat.write(nb, str(tmp_path / "nb.ipynb"))
    progress = runner.Progress(tmp_path / "nb.ipynb", tmp_path, "x")
    assert progress.cell() == "cell 2/3"
    assert progress.training(0.0) is None
    run = tmp_path / "runs" / "baseline-s0"
    files.write_json(run / "config.json", {"train": {"steps": 100}})
    metrics = run / "metrics.jsonl"
    metrics.write_text('{"step": 10, "split": "train"}\n')
    assert progress.training(0.0) == "training baseline-s0: step 10/100"
    metrics.write_text(metrics.read_text() + '{"step": 40, "split": "train"}\n{"step": 4')  # torn last line
    assert progress.training(60.0) == "training baseline-s0: step 40/100, ETA 2m00s"
    metrics.write_text('{"step": 20, "split": "train"}\n')  # a killed run restarted from step 0
    assert progress.training(100.0) == "training baseline-s0: step 20/100"
    metrics.write_text(metrics.read_text() + '{"step": 30, "split": "train"}\n')
    assert progress.training(110.0) == "training baseline-s0: step 30/100, ETA 1m10s"


def test_index_heads_with_findings_and_sorts_runs(tmp_path):
    files.write_json(tmp_path / "train" / "x" / "summary.json", {"params": 9092, "status": "complete"})
    ok = tmp_path / "iterations" / "run-a"
    files.write_json(ok / "summary.json", {
        "kind": "notebook-run", "status": "complete", "params": {"preset": "cpu-quick"}, "seeds": [0, 1],
        "solved_final": {"baseline:0": 99.0, "baseline:all": 91.5, "sam [other code]:0": 80.0, "sam [other code]:all": 70.0},
        "runs_from_other_code": ["sam-s0"]})
    files.write_text(ok / "report.html", "<html></html>")
    files.write_json(tmp_path / "curriculum" / "run-b" / "summary.json",
                     {"kind": "notebook-run", "status": "failed", "error": {"evalue": "boom"}})
    for name in ("old", "new"):
        files.write_text(tmp_path / "findings" / name / "report-noinput.html", name)
    page = runner.refresh_index(tmp_path).read_text()
    assert page.index("findings/new/report-noinput.html") < page.index("<table")
    table = runner.index_rows(tmp_path)
    assert list(table.columns[:8]) == ["family", "run", "variant", "status", "preset", "seeds", "0", "all"]
    a = table[table.run == "run-a"].set_index("variant")
    assert a.loc["baseline", "all"] == 91.5 and a.loc["sam [other code]", "0"] == 80.0 and a.loc["baseline", "seeds"] == 2
    assert a.loc["baseline", "code"] == "1 run(s) from other code"
    assert 'href="iterations/run-a/report.html"' in page and "boom" in page and "failed" in page
    assert "train" not in set(table.family), "a training run's summary is not a notebook run"
    assert "addEventListener('click'" in page and "<script src" not in page, "sorting works offline"
    assert str(tmp_path) not in page, "the index shows no machine paths"


def test_index_links_findings_md_and_says_whether_its_runs_are_current(tmp_path, monkeypatch):
    from lib.findings import findings
    runs = pd.DataFrame({"run": ["a", "b", "c"], "code_version": [HERE, HERE, "r0"]})
    monkeypatch.setattr(findings, "read_results", lambda path, seeds=None: runs)
    line = runner.findings_line(REPO / "outputs")
    assert 'href="../FINDINGS.md"' in line and "stale: 1 of its 3 runs" in line
    monkeypatch.setattr(findings, "read_results", lambda path, seeds=None: runs.assign(code_version=HERE))
    assert "all 3 runs it rests on are the current code's" in runner.findings_line(REPO / "outputs")
    assert "FINDINGS.md" in runner.refresh_index(tmp_path).read_text()


# --- project files -------------------------------------------------------------------------------

def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    assert python.split("=")[1] in project["requires-python"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert pip == ["-c constraints.txt", "-e .[dev]"], "pyproject.toml, with the lock"


def test_pyproject_has_lower_bounds_and_the_lock_pins_every_dependency():
    """GPU machines come with Python 3.12 and their own CUDA torch: pyproject.toml caps neither.
    What make installs is pinned in constraints.txt, the golden records' torch included."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "<" not in project["requires-python"]
    extras = project["optional-dependencies"]
    requirements = project["dependencies"] + [r for reqs in extras.values() for r in reqs]
    assert not [r for r in requirements if "==" in r or "<" in r], "lower bounds only"
    pins = [line.split("==") for line in (REPO / "constraints.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")]
    lock = {name.lower().replace("_", "-"): version.strip() for name, version in pins}
    names = {re.split(r"[<>=\[ ;]", r)[0].lower() for r in requirements} - {project["name"]}
    assert names <= set(lock), f"not pinned in constraints.txt: {sorted(names - set(lock))}"
    assert lock["torch"].startswith("2.13.0"), "the torch the golden records were made with"
    assert "-c constraints.txt" in (REPO / "Makefile").read_text()


def test_readme_names_the_two_commands():
    readme = (REPO / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert "lib.workbook " not in readme, "the command line is lib.cli"
