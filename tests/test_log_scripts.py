"""Every variant runs what its script ran (tests/log_scripts.yaml, read from the log's scripts): its resolved
gpu-paper config holds every fact of its entry but the documented differences, and its model has exactly the
script's parameter count."""
from pathlib import Path

import pytest
import yaml

from lib.config import flatten
from lib.experiments.resolve import VARIANTS, make_config
from lib.model import build_model, count_params

TABLE = yaml.safe_load((Path(__file__).parent / "log_scripts.yaml").read_text())["variants"]
SCRIPTED = [name for name, v in VARIANTS.items() if v.script]


def test_every_variant_with_a_script_has_an_entry_and_names_it():
    assert sorted(TABLE) == sorted(SCRIPTED)
    for name in SCRIPTED:
        assert TABLE[name]["script"] == VARIANTS[name].script, name
    beyond = [name for name, v in VARIANTS.items() if not v.script]
    assert all(not VARIANTS[name].section for name in beyond), "a variant beyond the log has no section"


@pytest.mark.parametrize("name", SCRIPTED)
def test_the_variant_runs_its_scripts_facts_at_gpu_paper(name):
    entry = TABLE[name]
    config = flatten(make_config("gpu-paper", name).to_dict())
    if config["train.grad_accum"] == 0:  # auto: the whole batch where the card holds it, as run
        config["train.grad_accum"] = 1
    differs = entry.get("differs") or {}
    wrong = {key: (config.get(key, "(no such field)"), want) for key, want in entry["ran"].items()
             if key not in differs and config.get(key, "(no such field)") != want}
    assert not wrong, f"{name} differs from {entry['script']} in {wrong} (config, script)"
    assert set(differs) <= set(config), f"{name}: documented differences name no field"


@pytest.mark.parametrize("name", SCRIPTED)
def test_the_variant_has_its_scripts_parameter_count(name):
    cfg = make_config("gpu-paper", name)
    assert count_params(build_model(cfg.model, 9)) == TABLE[name]["params"]


def test_gpu_iters_is_the_sequels_best_recipe():
    iters = flatten(make_config("gpu-iters").to_dict())
    recipe = flatten(make_config("gpu-paper", "iters-lr2e3").to_dict())
    differ = {k for k in iters if iters[k] != recipe[k]}
    assert differ == {"preset", "variant", "eval.iterations"}, differ
    assert max(iters["eval.iterations"]) == 1024
