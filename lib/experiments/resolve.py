"""What runs: make_config resolves a preset (presets.py) + a variant (variants.py) + overrides into one
validated RunConfig, carrying a variant's 9x9 numbers to a scaled-down preset by each field's scale rule
(lib/config.py's docstring), and answers which variants run the same config (config_twin)."""
from __future__ import annotations

import copy
import functools
import json

from lib.config import ConfigError, RunConfig, apply_overrides, flatten, scale_rules, validate
from lib.experiments.presets import PRESETS
from lib.experiments.variants import VARIANTS


def make_config(preset: str = "cpu-quick", variant: str = "baseline", overrides: dict | None = None) -> RunConfig:
    """The one way to build a run's config: defaults <- preset <- the variant's bases <- the variant
    <- overrides, validated. A variant that changes the iteration count is also evaluated at 2x."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}; choose one of: {', '.join(VARIANTS)}")
    cfg = preset_config(preset)
    cfg.variant = variant
    reference = copy.deepcopy(cfg)  # the preset's own numbers, which scaled variants keep their ratio to
    for name in variant_chain(variant):
        apply_overrides(cfg, variant_overrides(name, cfg, reference))
    apply_overrides(cfg, pins(preset))  # the preset's pins hold whatever the variant set (pinned_away says what)
    if cfg.model.iterations != reference.model.iterations and cfg.eval.iterations == reference.eval.iterations:
        cfg.eval.iterations = [cfg.model.iterations, 2 * cfg.model.iterations]
    apply_overrides(cfg, overrides or {})
    validate(cfg, reference)
    return cfg


def preset_config(preset: str) -> RunConfig:
    """The defaults with a preset's overrides; on a relative preset the horizon, dose and rope fields it does
    not set carry the recipe's values by their rule (the preset's weight decay keeps the recipe's dose)."""
    cfg = RunConfig(preset=preset)
    apply_overrides(cfg, PRESETS[preset].overrides)
    if PRESETS[preset].relative:
        recipe = flatten(preset_config(PRESETS[preset].recipe).to_dict())
        carried = {k: recipe[k] for k, rule in scale_rules().items()
                   if rule["scale"] in ("horizon", "dose", "rope") and k not in PRESETS[preset].overrides}
        apply_overrides(cfg, _scaled(carried, cfg, recipe))
    return apply_overrides(cfg, pins(preset))


def pins(preset: str) -> dict:
    """The preset's pinned values (presets.py: Preset.pinned), as overrides."""
    return {key: value for key, (value, _) in PRESETS[preset].pinned.items()}


def pinned_away(preset: str, variant: str) -> dict:
    """key -> value for what the variant (or a base) sets that the preset's pins hold instead: the part of
    its script a run on this preset does not carry (Preset.pinned says why)."""
    pinned, away = PRESETS[preset].pinned, {}
    for name in variant_chain(variant):
        for key, value in VARIANTS[name].overrides.items():
            if key in pinned:
                away[key] = value
    return {k: v for k, v in away.items() if v != pinned[k][0]}


def variant_chain(name: str) -> list[str]:
    """The variant and its bases, the root first: recur-add-nopred -> [original, recur-add, recur-add-nopred]."""
    chain = []
    while name is not None:
        if name in chain or name not in VARIANTS:
            raise ConfigError(f"variant base chain is broken at {name!r}: {' <- '.join(chain)}")
        chain.append(name)
        name = VARIANTS[name].base
    return chain[::-1]


def variant_overrides(name: str, cfg: RunConfig, reference: RunConfig) -> dict:
    """One variant's own overrides, scaled to the preset, then what its `derived` returns for the config they
    make (already on the preset's scale, so used as it is)."""
    variant, preset = VARIANTS[name], PRESETS[cfg.preset]
    overrides = copy.deepcopy(variant.overrides)
    if preset.relative:
        overrides = _scaled(overrides, reference, flatten(preset_config(preset.recipe).to_dict()))
        own = flatten(reference.to_dict())
        overrides.update({key: own[key] for key in variant.rebased})
    if variant.derived is not None:
        overrides.update(variant.derived(apply_overrides(copy.deepcopy(cfg), overrides)))
    return overrides


def config_twin(preset: str, variant: str, candidates=None) -> str:
    """The first of `candidates` (default: every variant before it in the registry) that runs exactly
    `variant`'s config on `preset`, its name aside; the variant itself when none does. The one answer to
    "does this variant run that one's config?": findings read a twin's runs instead of training it again,
    and the registry's `twin_on` declarations are checked against it (tests/test_variants.py)."""
    names = list(VARIANTS)
    candidates = names[:names.index(variant)] if candidates is None else candidates
    mine = _bare_config(preset, variant)
    return next((c for c in candidates if c != variant and mine is not None and _bare_config(preset, c) == mine),
                variant)


@functools.lru_cache(maxsize=None)
def _bare_config(preset: str, variant: str) -> str | None:
    """What a variant runs on a preset, its name aside (as JSON: cached, so immutable); None when it does not
    build there. Cached: config_twin of every variant compares it with every earlier one."""
    try:
        cfg = make_config(preset, variant).to_dict()
    except ConfigError:
        return None
    cfg.pop("variant")
    return json.dumps(cfg, sort_keys=True)


def _scaled(overrides: dict, reference: RunConfig, recipe: dict) -> dict:
    """A variant's 9x9 overrides carried to a scaled-down preset by each field's declared scale rule;
    `recipe` is the flattened config of the 9x9 preset the preset scales (its Preset.recipe)."""
    preset = flatten(reference.to_dict())
    rules = scale_rules()
    scale = lambda key: rules.get(key, {}).get("scale")
    for key in [k for k in overrides if scale(k) == "ratio"]:
        value = preset[key] * overrides[key] / recipe[key]
        overrides[key] = value if isinstance(recipe[key], float) else max(min(1, overrides[key]), round(value))
    if "train.batch_size" in overrides:  # whole micro-batches
        accum = overrides.get("train.grad_accum", preset["train.grad_accum"]) or 1  # 0: auto
        overrides["train.batch_size"] = max(accum, accum * round(overrides["train.batch_size"] / accum))
    if "model.n_layers" in overrides:
        overrides["model.n_layers"] = _scaled_depth(overrides["model.n_layers"], preset["model.n_layers"],
                                                    recipe["model.n_layers"])
    widths = {k: r["like"] for k, r in rules.items() if r.get("scale") == "width"}
    if any(key in overrides for key in widths):
        _scale_widths(overrides, preset, recipe, widths)
    for key in [k for k in overrides if scale(k) == "preset"]:
        overrides[key] = sorted(preset[key]) if isinstance(preset[key], list) else preset[key]
    for key in [k for k in overrides if scale(k) == "horizon" and overrides[k]]:
        # the average forgets its start as fast relative to the run as the recipe's did
        overrides[key] = max(0.5, 1 - (1 - overrides[key]) * recipe["train.steps"] / preset["train.steps"])
    for key in [k for k in overrides if scale(k) == "dose"]:
        overrides[key] = overrides[key] * lr_sum(recipe) / lr_sum(preset)
    if "model.rope_base" in overrides:
        head_dim = overrides.get("model.d_model", preset["model.d_model"]) // overrides.get("model.n_heads",
                                                                                         preset["model.n_heads"])
        overrides["model.rope_base"] = _rope_base(overrides["model.rope_base"], recipe, preset, head_dim)
    return overrides


def lr_sum(flat: dict) -> float:
    """The learning rate summed over a run's steps (a flattened config), for its schedule kind: what AdamW's
    decoupled weight decay multiplies by (stage restarts counted as one cosine)."""
    peak, steps, warmup = flat["optim.lr"], flat["train.steps"], flat["schedule.warmup_steps"]
    kind, floor = flat["schedule.kind"], flat["schedule.lr_min_ratio"]
    if kind == "constant":
        return peak * steps
    warm = peak * (warmup + 1) / 2
    return warm + peak * (steps - warmup) * (1.0 if kind == "warmup" else (1 + floor) / 2)


def _rope_base(base: float, recipe: dict, preset: dict, head_dim: int) -> float:
    """The base at which RoPE's slowest frequency turns by the same angle across the preset's grid as it
    does across the recipe's: base^(-(F-1)/F) x (n - 1) kept, F = head_dim / 4 frequencies per axis."""
    f_r = (recipe["model.d_model"] // recipe["model.n_heads"]) // 4
    f_p, n_r, n_p = head_dim // 4, recipe["data.grid_size"], preset["data.grid_size"]
    if f_p <= 1 or f_r <= 1:
        return base  # one frequency (1 rad per row) whatever the base
    slowest = base ** (-(f_r - 1) / f_r) * (n_r - 1) / (n_p - 1)
    return round(slowest ** (-f_p / (f_p - 1)), 3)


def _scaled_depth(layers: int, preset_layers: int, recipe_layers: int) -> int:
    depth = layers * preset_layers / recipe_layers
    if depth != int(depth) or depth < 1:
        raise ConfigError(f"model.n_layers: {layers} of the recipe's {recipe_layers} layers is {depth:g} of this "
                          f"preset's {preset_layers}; the log's depth ratio needs a whole number of layers")
    return int(depth)


def _scale_widths(overrides: dict, preset: dict, recipe: dict, widths: dict) -> None:
    for key, like in widths.items():
        if key in overrides:
            overrides[key] = max(8, round(preset[f"model.{like}"] * overrides[key] / recipe[f"model.{like}"]))
    if "model.d_model" in overrides:
        quantum = 4 * overrides.get("model.n_heads", preset["model.n_heads"])  # rope2d: head_dim % 4 == 0
        d = max(quantum, quantum * round(overrides["model.d_model"] / quantum))
        if d == preset["model.d_model"] != overrides["model.d_model"]:  # rounding must not undo the change
            d += quantum if overrides["model.d_model"] > d else -quantum
        overrides["model.d_model"] = max(quantum, d)
