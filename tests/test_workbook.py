"""The shell: parameters, notebook conventions, environment files, the index."""
import json
import re
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from lib import workbook
from lib.config import ConfigError

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_there_is_a_notebook_per_family():
    assert [p.name for p in NOTEBOOKS][0] == "01_baseline.ipynb"
    assert len(NOTEBOOKS) >= 6


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(path):
    nb = nbformat.read(str(path), as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "committed with outputs"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    # thin notebooks: no function or class definitions; logic lives in lib/
    assert not any(re.search(r"^\s*(def|class) ", c.source, re.M) for c in code)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_are_typed_and_documented(path):
    params = workbook.notebook_parameters(path)
    for name in ("preset", "seeds", "device", "output_dir", "overrides", "reuse"):
        assert name in params, f"{path.name} lacks parameter {name}"
        assert params[name]["inferred_type_name"] != "None", name
        assert params[name]["help"], f"{name} has no comment"


def test_params_from_yaml_file_and_pairs_arrive_typed(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("seeds: [0, 1]\nreuse: false\npreset: cpu-smoke\n")
    params = workbook.parse_params([["reuse", "true"], ["overrides", "{train.steps: 5}"]], [str(f)])
    assert params == {"seeds": [0, 1], "reuse": True, "preset": "cpu-smoke", "overrides": {"train.steps": 5}}
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="YAML mapping"):
        workbook.parse_params(None, [str(bad)])


def test_unknown_notebook_parameter_is_refused_before_running(tmp_path):
    with pytest.raises(ConfigError, match="no parameter\\(s\\) presett"):
        workbook.run_notebook(REPO / "notebooks" / "01_baseline.ipynb", {"presett": "x"}, out_root=tmp_path)
    assert not any(tmp_path.iterdir())


def test_family_names():
    assert workbook.family_of("notebooks/01_baseline.ipynb") == "baseline"
    assert workbook.family_of("05_curriculum.ipynb") == "curriculum"
    assert workbook.family_of("scratch.ipynb") == "scratch"


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    assert python.split("=")[1] in project["requires-python"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert pip == ["-e .[dev]"], "environment.yml must install from pyproject.toml, not list its own packages"
    assert "torch==2.13.0" in project["dependencies"]


def test_index_lists_runs_and_marks_failures(tmp_path):
    ok = tmp_path / "baseline" / "run-a"
    bad = tmp_path / "curriculum" / "run-b"
    workbook.write_json_atomic(tmp_path / "train" / "x" / "summary.json", {"params": 9092, "status": "complete"})
    workbook.write_json_atomic(ok / "summary.json", {"kind": "notebook-run", "status": "complete", "solved_final": {"baseline:all": 91.5},
                                                     "params": {"preset": "cpu-quick"}, "grid_size": 6})
    workbook.write_json_atomic(bad / "summary.json", {"kind": "notebook-run", "status": "failed", "error": {"evalue": "boom"}})
    html = workbook.refresh_index(tmp_path).read_text()
    assert "run-a" in html and "baseline:all 91.5" in html
    assert "failed" in html and "boom" in html
    assert "train" not in html.split("<table")[1]  # a training run's summary is not a notebook run


def test_atomic_json_leaves_no_temp_files(tmp_path):
    workbook.write_json_atomic(tmp_path / "a.json", {"x": 1})
    workbook.write_json_atomic(tmp_path / "a.json", {"x": 2})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_variants_command_lists_every_variant(capsys):
    from lib.config import VARIANTS
    workbook.main(["variants"])
    out = capsys.readouterr().out
    assert all(name in out for name in VARIANTS)


def test_readme_names_the_two_commands():
    readme = (REPO / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_failure_table_counts_lost_and_drifting_puzzles():
    import pandas as pd
    rows = []
    # puzzle 0: solved at iteration 1, lost at 2; puzzle 1: solved throughout; puzzle 2: never solved, best at 1
    for puzzle, accs, solved in [(0, [1.0, 0.8], [True, False]), (1, [1.0, 1.0], [True, True]),
                                 (2, [0.7, 0.5], [False, False])]:
        for it, (acc, ok) in enumerate(zip(accs, solved), start=1):
            rows.append(dict(variant="v", seed=0, bucket="1", puzzle=puzzle, iteration=it, cell_acc=acc, solved=ok,
                             trained_iterations=2))
    rows.append(dict(variant="v", seed=0, bucket="1", puzzle=2, iteration=3, cell_acc=1.0, solved=True,
                     trained_iterations=2))  # beyond the trained count: ignored
    res = workbook.Results(pd.DataFrame(), pd.DataFrame(rows), pd.DataFrame(), {})
    row = workbook.failure_table(res).loc[("v", "1")]
    assert row["unsolved puzzles (all seeds)"] == 2 and row["unsolved %"] == pytest.approx(66.7, abs=0.1)
    assert row["solved earlier, lost %"] == 50.0 and row["peaked early %"] == 100.0
    assert row["best iteration of the unsolved"] == 1.0
