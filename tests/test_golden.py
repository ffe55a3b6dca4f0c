"""Code identity by what computes (lib/provenance.py) and the fingerprints that certify it (lib/findings/golden.py).

Both directions: an edit that cannot change a result keeps every finished run current, and a change to what a
run computes is caught by the fingerprints, which refuse it until the results version is bumped (staling
every earlier run)."""
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from lib.findings import golden
from lib import model, provenance
from lib.workbook import workbook
from lib.findings.golden import GOLDEN_RUN

from test_workbook import fake_run


def _copy_lib(tmp_path):
    for name in provenance.COMPUTING_MODULES:  # some sit in a wing: sudoku/puzzles.py
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(provenance.LIB / name, tmp_path / name)
    return tmp_path


def test_comments_docstrings_and_layout_keep_the_code_identity(tmp_path):
    lib = _copy_lib(tmp_path)
    before = provenance.ast_hash(root=lib)
    text = (lib / "model.py").read_text()
    text = text.replace('"""The recurrent-depth Sudoku model', '"""A rewritten docstring. The recurrent-depth Sudoku model')
    text = text.replace("def relu2(x: torch.Tensor) -> torch.Tensor:",
                        "# a new comment\n\n\ndef relu2(x: torch.Tensor)   ->   torch.Tensor:  # and another")
    (lib / "model.py").write_text(text)
    assert provenance.ast_hash(root=lib) == before


def test_a_computing_edit_changes_the_syntax_hash(tmp_path):
    lib = _copy_lib(tmp_path)
    before = provenance.ast_hash(root=lib)
    text = (lib / "model.py").read_text()
    (lib / "model.py").write_text(text.replace("return F.relu(x).square()", "return F.relu(x).square() * 1.0"))
    assert provenance.ast_hash(root=lib) != before


def test_the_version_is_the_certified_one_only_for_the_certified_code(monkeypatch):
    monkeypatch.setattr(provenance, "certified", lambda: {"results_version": provenance.RESULTS_VERSION,
                                                          "ast_hash": "abc"})
    assert provenance.code_version("abc") == f"r{provenance.RESULTS_VERSION}"
    assert provenance.code_version("def") == f"r{provenance.RESULTS_VERSION}+edited.def"  # not yet certified
    monkeypatch.setattr(provenance, "certified", lambda: {"results_version": provenance.RESULTS_VERSION - 1,
                                                          "ast_hash": "abc"})
    assert provenance.code_version("abc") != f"r{provenance.RESULTS_VERSION}"  # certified for an older version


def test_status_says_whether_the_code_is_the_certified_one(monkeypatch, capsys):
    """The door's check (.ci/run, make findings); an uncertified edit fails it, not the test suite."""
    monkeypatch.setattr(golden, "code_version", lambda: f"r{provenance.RESULTS_VERSION}")
    assert golden.main(["status"]) == 0
    monkeypatch.setattr(golden, "code_version", lambda: f"r{provenance.RESULTS_VERSION}+edited.abc")
    assert golden.main(["status"]) == 1
    assert "make golden" in capsys.readouterr().out


def test_a_run_of_the_certified_version_is_reused_and_one_of_another_is_not(tmp_path):
    cfg = workbook.config_for("cpu-smoke")
    version = f"r{provenance.RESULTS_VERSION}"
    fake_run(tmp_path / "same", cfg, version)
    fake_run(tmp_path / "older", cfg, f"r{provenance.RESULTS_VERSION - 1}")
    fake_run(tmp_path / "edited", cfg, f"{version}+edited.0123456789abcdef")
    assert workbook.reuse_action(tmp_path / "same", cfg, version, True) == "reuse"
    assert workbook.reuse_action(tmp_path / "older", cfg, version, True) == "train"
    assert workbook.reuse_action(tmp_path / "edited", cfg, version, True) == "train"


def test_a_field_added_since_a_run_was_made_keeps_it_current(tmp_path):
    """A run's config.json from before a field existed reads that field at its default."""
    cfg = workbook.config_for("cpu-smoke")
    run = fake_run(tmp_path / "run", cfg, f"r{provenance.RESULTS_VERSION}")
    saved = workbook.files.read_json(run / "config.json")
    del saved["eval"]["sources"]  # as if written before eval.sources existed
    workbook.files.write_json(run / "config.json", saved)
    assert workbook.reuse_action(run, cfg, f"r{provenance.RESULTS_VERSION}", True) == "reuse"
    saved["eval"]["gone"] = 1  # a field the code no longer has: another config
    workbook.files.write_json(run / "config.json", saved)
    assert workbook.reuse_action(run, cfg, f"r{provenance.RESULTS_VERSION}", True) == "train"


def _fingerprint_with_init_scale(tmp_path, monkeypatch, scale: float) -> dict:
    init = model._small_init  # the CPU presets pin model.init=small

    def scaled_init(module):
        init(module)
        if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
            module.weight.data.mul_(scale)

    monkeypatch.setattr(model, "_small_init", scaled_init)
    with golden.one_thread():
        return golden.variant_fingerprints_of(["baseline"], tmp_path / f"x{scale}")["baseline"]


def test_a_change_to_what_a_run_computes_changes_its_fingerprint(tmp_path, monkeypatch):
    """Exactly and to the tolerance used between machines: 1% on the init scale is a real change."""
    real = _fingerprint_with_init_scale(tmp_path, monkeypatch, 1.0)
    changed = _fingerprint_with_init_scale(tmp_path, monkeypatch, 1.01)
    old = {"variants": {"baseline": real}}
    assert golden.differences({"variants": {"baseline": changed}}, old, exact=True)
    assert golden.differences({"variants": {"baseline": changed}}, old, exact=False), "a tolerance must see it too"
    assert not golden.differences({"variants": {"baseline": real}}, old, exact=True)


def test_a_machine_reads_its_own_record_of_the_current_version(tmp_path, monkeypatch):
    first = {"results_version": provenance.RESULTS_VERSION, "machine": {"model": "another"}, "data": {"x": "1"}}
    monkeypatch.setattr(golden, "GOLDEN", tmp_path)
    monkeypatch.setattr(golden, "FINGERPRINTS", tmp_path / "fingerprints.json")
    golden.files.write_json(tmp_path / "fingerprints.json", first)
    assert golden.recorded() == first, "no record of its own: the first record, compared to a tolerance"
    assert not golden.recorded_here(first)
    own = {**first, "machine": provenance.machine(), "data": {"x": "2"}}
    golden.files.write_json(golden.machine_record(), own)
    assert golden.recorded() == own and golden.recorded_here(own)
    golden.files.write_json(golden.machine_record(), {**own, "results_version": -1})
    assert golden.recorded() == first, "a record of an earlier results version is not this one's"


def test_the_same_capability_on_another_processor_is_compared_to_a_tolerance():
    """Two EPYCs that both report AVX512 round apart: only the recording machine compares exactly."""
    here = provenance.machine()
    assert golden.recorded_here({"machine": here})
    assert not golden.recorded_here({"machine": {**here, "model": here["model"] + "7"}})
    assert not golden.recorded_here({"capability": golden.capability()}), "a record without its machine"


def test_record_refuses_code_that_is_not_the_certified_version(monkeypatch):
    monkeypatch.setattr(golden, "ast_hash", lambda: "an-edited-tree")
    with pytest.raises(SystemExit, match="not the certified results version"):
        golden.record(Path("unused"))


@pytest.fixture(scope="module")
def current(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("golden")
    return golden.fingerprints(tmp), tmp


@pytest.mark.slow
def test_every_fingerprint_is_the_recorded_one(current):
    new, _ = current
    old = golden.recorded()
    exact = golden.recorded_here(old)
    changed = golden.differences(new, old, exact)
    assert not changed, ("what the code computes changed under results version "
                         f"{provenance.RESULTS_VERSION}: " + "; ".join(changed[:10]) +
                         ". If meant, bump RESULTS_VERSION and run `make golden`.")


@pytest.mark.slow
def test_the_golden_runs_per_puzzle_results_are_the_committed_ones(current):
    _, tmp = current
    first = golden.files.read_json(golden.FINGERPRINTS, {})
    if not golden.recorded_here(first):
        pytest.skip("the committed golden run was recorded on another machine: per-puzzle results are compared "
                    "only on the same CPU kernels (through this machine's own record's digest where it has one, "
                    "else the losses to a tolerance)")
    got = pd.read_parquet(tmp / "golden" / "eval.parquet")
    want = pd.read_parquet(GOLDEN_RUN / "eval.parquet")
    pd.testing.assert_frame_equal(got, want)
    assert golden.rows(tmp / "golden" / "metrics.jsonl") == golden.rows(GOLDEN_RUN / "metrics.jsonl")
