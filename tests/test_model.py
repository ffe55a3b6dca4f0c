"""lib/model.py: shapes for every choice, the log's parameter counts, the step API, halting-style
state slicing, checkpointing, positions, and that a tiny model can memorise a few puzzles."""
import dataclasses
import math
import time

import pytest
import torch

from lib import model as model_lib
from lib.config import CHOICES, ModelConfig
from lib.experiments.resolve import VARIANTS, make_config
from lib.model import apply_rope, build_model, count_params, iteration_loss, rope2d_tables, sequence_loss


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and a second OpenMP thread spin-waits badly when
    other work shares the two cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = dict(d_model=16, n_layers=1, n_heads=2, d_ff=32, iterations=2, h_cycles=2, l_cycles=2, dropout=0.0)
MODEL_CHOICES = [(key.split(".")[1], value) for key, values in CHOICES.items()
                 if key.startswith("model.") for value in values]


def tiny(**overrides) -> ModelConfig:
    return ModelConfig(**{**TINY, **overrides})


def puzzles(n: int, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (not necessarily valid) puzzle/answer pairs: enough for shapes and gradients."""
    g = torch.Generator().manual_seed(seed)
    answer = torch.randint(1, n + 1, (batch, n * n), generator=g)
    blank = torch.rand(batch, n * n, generator=g) < 0.5
    return answer.masked_fill(blank, 0), answer


def valid_4x4(count: int, blanks: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Valid 4x4 puzzles: a base solution under digit relabelling and row/column/band shuffles."""
    g = torch.Generator().manual_seed(seed)
    base = torch.tensor([[1, 2, 3, 4], [3, 4, 1, 2], [2, 1, 4, 3], [4, 3, 2, 1]])

    def order():  # a band order, then an order inside each band
        bands = torch.randperm(2, generator=g)
        return torch.cat([2 * b + torch.randperm(2, generator=g) for b in bands])

    grids, qs = [], []
    for _ in range(count):
        grid = torch.cat([torch.zeros(1, dtype=torch.long), torch.randperm(4, generator=g) + 1])[base]
        grid = grid[order()][:, order()]
        grid = grid.T if torch.rand(1, generator=g) < 0.5 else grid
        flat = grid.reshape(-1)
        q = flat.clone()
        q[torch.randperm(16, generator=g)[:blanks]] = 0
        grids.append(flat), qs.append(q)
    return torch.stack(qs), torch.stack(grids)


def grads(model) -> dict:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


# --- shapes and wiring ---------------------------------------------------------------------------

@pytest.mark.parametrize("n", [4, 6, 9])
@pytest.mark.parametrize("field,value", MODEL_CHOICES)
def test_every_choice_runs_forward_backward(field, value, n):
    needs = {("input", "embed"): {"feed_preds": False}}  # TRM's input feeds no predictions back
    model = build_model(tiny(**{field: value, **needs.get((field, value), {})}), n)
    puzzle, answer = puzzles(n, batch=3)
    out = model(puzzle)
    assert out.logits.shape == (2, 3, n * n, n) and out.logits.dtype == torch.float32
    loss = sequence_loss(out, answer, puzzle, model.cfg)
    loss.backward()
    assert torch.isfinite(loss)
    # every parameter is wired into the loss (a module built but never used is a bug)
    missing = [name for name, p in model.named_parameters()
               if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum() > 0]
    assert not missing, f"{field}={value}: no gradient for {missing}"


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_named_variant_builds_and_trains_one_step(name):
    cfg = make_config("cpu-smoke", name)
    model = build_model(cfg.model, cfg.data.grid_size)
    puzzle, answer = puzzles(cfg.data.grid_size, batch=4)
    loss = iteration_loss(model(puzzle), answer, cfg.model.loss)
    loss.backward()
    assert torch.isfinite(loss)


def test_baseline_9x9_has_the_logs_800k_params():
    model = build_model(ModelConfig(), 9)
    n = count_params(model)
    print(f"\nbaseline 9x9 (d128 L4 H4 ff512): {n:,} params")
    assert 750_000 <= n <= 850_000
    mixer = count_params(build_model(ModelConfig(block="mixer", pos="rcb"), 9))
    print(f"mlp-mixer 9x9: {mixer:,} params")
    assert 840_000 <= mixer <= 900_000  # the log: 870K
    # the log's recurrence extras: concat +16k, gated +33k, mem +16k
    for rec, extra in [("concat", 16_384), ("gated", 32_896), ("mem", 16_576)]:
        assert count_params(build_model(ModelConfig(recurrence=rec), 9)) - n == extra


def test_scale_variants_param_counts():
    counts = {v: count_params(build_model(make_config("gpu-paper", v).model, 9))
              for v in ["scale-down", "scale-1m", "scale-up", "unrolled", "middle1", "middle2"]}
    print("\n" + "\n".join(f"{v}: {c:,}" for v, c in counts.items()))
    assert 90_000 <= counts["scale-down"] <= 110_000
    assert 950_000 <= counts["scale-1m"] <= 1_050_000
    assert 6_000_000 <= counts["scale-up"] <= 6_600_000
    assert 12_000_000 <= counts["unrolled"] <= 13_000_000
    assert abs(counts["middle1"] - counts["middle2"]) < 10_000  # same ~800K split differently


@pytest.mark.parametrize("n", [4, 6, 9])
def test_fresh_model_predicts_uniformly(n):
    torch.manual_seed(0)
    model = build_model(ModelConfig(iterations=4, init="small"), n)  # the workbook's small init
    puzzle, answer = puzzles(n, batch=8)
    loss = iteration_loss(model(puzzle), answer).item()
    assert abs(loss - math.log(n)) < 0.1, (loss, math.log(n))


# --- the step API --------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides", [{}, {"recurrence": "mem"}, {"sharing": "nested", "block": "mixer", "pos": "rcb"},
                                       {"input": "proj_concat", "recurrence": "gated", "pos": "rcb"}])
def test_step_api_matches_forward(overrides):
    model = build_model(tiny(iterations=3, **overrides), 4).eval()
    puzzle, _ = puzzles(4, batch=5)
    with torch.no_grad():
        expected = model(puzzle).logits
        state = model.init_state(puzzle)
        for i in range(3):
            state, logits = model.step(state, i)
            torch.testing.assert_close(logits, expected[i])


def test_state_rows_can_be_dropped_between_steps():
    """Verified halting drops solved puzzles mid-run: every state tensor is batch-first."""
    model = build_model(tiny(iterations=4, recurrence="mem"), 4).eval()
    puzzle, _ = puzzles(4, batch=6)
    keep = torch.tensor([0, 2, 5])
    with torch.no_grad():
        full = model(puzzle).logits
        state = model.init_state(puzzle)
        state, _ = model.step(state, 0)
        state = {k: v[keep] for k, v in state.items()}
        for i in range(1, 4):
            state, logits = model.step(state, i)
            torch.testing.assert_close(logits, full[i, keep])


def test_puzzle_accepts_grid_shape_and_uint8():
    model = build_model(tiny(), 4).eval()
    puzzle, _ = puzzles(4, batch=2)
    with torch.no_grad():
        torch.testing.assert_close(model(puzzle.to(torch.uint8).view(2, 4, 4)).logits, model(puzzle).logits)


@pytest.mark.parametrize("sharing", ["shared", "phased", "unrolled", "nested"])
def test_more_iterations_than_trained(sharing):
    model = build_model(tiny(iterations=4, sharing=sharing, n_phases=2 if sharing == "phased" else 2), 4).eval()
    puzzle, _ = puzzles(4, batch=3)
    with torch.no_grad():
        trained, longer = model(puzzle).logits, model(puzzle, iterations=8).logits
    assert longer.shape == (8, 3, 16, 4) and torch.isfinite(longer).all()
    torch.testing.assert_close(longer[:4], trained)


def core_calls(model, puzzle, iterations):
    """Which core (index) runs at each call, in order."""
    calls = []
    hooks = [core.register_forward_hook(lambda *_, k=k: calls.append(k)) for k, core in enumerate(model.cores)]
    with torch.no_grad():
        model(puzzle, iterations=iterations)
    for h in hooks:
        h.remove()
    return calls


def test_sharing_picks_the_right_core():
    puzzle, _ = puzzles(4, batch=1)
    phased = build_model(tiny(iterations=8, sharing="phased", n_phases=4), 4)
    assert core_calls(phased, puzzle, 12) == [0, 0, 1, 1, 2, 2, 3, 3, 3, 3, 3, 3]
    unrolled = build_model(tiny(iterations=4, sharing="unrolled"), 4)
    assert core_calls(unrolled, puzzle, 6) == [0, 1, 2, 3, 3, 3]
    nested = build_model(tiny(iterations=2, sharing="nested", h_cycles=3, l_cycles=4), 4)
    assert core_calls(nested, puzzle, 2) == [0] * (2 * 3 * (4 + 1))


def test_nested_outer_cycles_but_the_last_carry_no_gradient():
    """With no-grad outer cycles, the gradient equals that of a model run from the state those
    cycles reach, treated as a constant."""
    torch.manual_seed(0)
    model = build_model(tiny(iterations=1, sharing="nested", h_cycles=2, l_cycles=2, pos="rope2d"), 4)
    puzzle, answer = puzzles(4, batch=3)
    iteration_loss(model(puzzle), answer).backward()
    got = grads(model)
    model.zero_grad()
    # by hand: first outer cycle without grad, the last with it
    cfg, core, rope = model.cfg, model.cores[0], (model.rope_cos, model.rope_sin)
    state = model.init_state(puzzle)
    x = model.inputs(model, state) + state["h0"]
    h, z = state["h"], state["z"]
    with torch.no_grad():
        for _ in range(cfg.l_cycles):
            z = core(z + h + x, rope)
        h = core(h + z, rope)
    for _ in range(cfg.l_cycles):
        z = core(z + h + x, rope)
    h = core(h + z, rope)
    iteration_loss(model.head(h)[None], answer).backward()
    for name, g in grads(model).items():
        torch.testing.assert_close(got[name], g, msg=name)


# --- training-time features ----------------------------------------------------------------------

@pytest.mark.parametrize("overrides", [{}, {"dropout": 0.1}, {"sharing": "nested", "block": "mixer", "pos": "rcb"},
                                       {"recurrence": "mem", "input": "concat", "pos": "rcb"}])
def test_activation_checkpointing_gives_identical_grads(overrides):
    puzzle, answer = puzzles(4, batch=4)
    results = []
    for ckpt in (False, True):
        torch.manual_seed(0)  # same weights and the same dropout masks
        model = build_model(tiny(iterations=3, activation_checkpointing=ckpt, **overrides), 4).train()
        loss = iteration_loss(model(puzzle), answer)
        loss.backward()
        results.append((loss.detach(), grads(model)))
    (loss_a, grads_a), (loss_b, grads_b) = results
    torch.testing.assert_close(loss_a, loss_b, rtol=0, atol=1e-6)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-5, atol=1e-7, msg=name)


def test_loss_modes():
    logits = torch.randn(3, 2, 16, 4)
    answer = torch.randint(1, 5, (2, 16))
    per_iter = [torch.nn.functional.cross_entropy(l.reshape(-1, 4), answer.reshape(-1) - 1) for l in logits]
    torch.testing.assert_close(iteration_loss(logits, answer, "all"), torch.stack(per_iter).mean())
    torch.testing.assert_close(iteration_loss(logits, answer, "final"), per_iter[-1])


def test_runs_under_bfloat16_autocast():
    for overrides in [{}, {"block": "mixer", "pos": "rcb"}, {"recurrence": "gated", "input": "proj_concat"}, {"recurrence": "mem"}]:
        model = build_model(tiny(**overrides), 4)
        puzzle, answer = puzzles(4, batch=2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(puzzle).logits
            loss = iteration_loss(logits, answer)
        loss.backward()
        assert logits.dtype == torch.float32 and torch.isfinite(loss)


def test_traces_as_one_graph():
    """No data-dependent Python control flow: dynamo captures forward+loss without graph breaks
    (backend=eager, so no slow CPU codegen in the suite)."""
    torch._dynamo.reset()
    model = build_model(tiny(iterations=3), 4)
    puzzle, answer = puzzles(4, batch=2)
    compiled = torch.compile(lambda p, a: iteration_loss(model(p), a), backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(puzzle, answer), iteration_loss(model(puzzle), answer))


# --- positions -----------------------------------------------------------------------------------

def test_rope2d_scores_depend_on_row_and_column_offsets_only():
    n, hd = 9, 16
    cos, sin = rope2d_tables(n, hd, 10.0)
    q, k = torch.randn(hd), torch.randn(hd)
    scores = apply_rope(q.expand(n * n, hd), cos, sin) @ apply_rope(k.expand(n * n, hd), cos, sin).T
    scores = scores.view(n, n, n, n)  # [row_i, col_i, row_j, col_j]
    # translation invariance: (0,0)->(2,3) scores like (4,1)->(6,4)
    torch.testing.assert_close(scores[0, 0, 2, 3], scores[4, 1, 6, 4])
    torch.testing.assert_close(scores[1, 5, 1, 2], scores[7, 8, 7, 5])
    # but not constant: row and column offsets each change the score
    assert (scores[0, 0, 0, 0] - scores[0, 0, 1, 0]).abs() > 1e-4
    assert (scores[0, 0, 0, 0] - scores[0, 0, 0, 1]).abs() > 1e-4
    assert (scores[0, 0, 1, 0] - scores[0, 0, 0, 1]).abs() > 1e-4  # rows and columns differ


@pytest.mark.parametrize("pos", ["rope2d", "rcb", "sinusoidal", "learned", "none"])
def test_positions_tell_blank_cells_apart(pos):
    """One clue in the centre: without positions every blank cell has the same input and sees the
    same set of cells, so all blanks get the same output; positions must tell them apart. (A fully
    blank grid would not do for RoPE: with identical values attention returns them whatever the
    weights.)"""
    torch.manual_seed(0)
    model = build_model(tiny(pos=pos, iterations=2), 9).eval()
    with torch.no_grad():  # larger weights than the init, so attention is far from uniform
        for p in model.parameters():
            p.normal_(std=0.5) if p.dim() > 1 else None
    puzzle = torch.zeros(1, 81, dtype=torch.long)
    puzzle[0, 40] = 5
    with torch.no_grad():
        logits = model(puzzle).logits[-1, 0]  # [C, N]
    blanks = logits[torch.arange(81) != 40]
    spread = (blanks - blanks[0]).abs().max().item()
    assert (spread < 1e-4) if pos == "none" else (spread > 1e-2), spread


def test_pos_once_only_adds_position_in_the_first_iteration():
    torch.manual_seed(0)
    model = build_model(tiny(pos="rcb", pos_every_iter=False, iterations=3), 4).eval()
    state = model.init_state(torch.zeros(1, 16, dtype=torch.long))
    seen = []
    model.cores[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0].clone()))
    with torch.no_grad():
        for i in range(3):
            h_prev, x = state["h"], model.inputs(model, state)
            state, _ = model.step(state, i)
            seen[-1] = seen[-1] - (h_prev + x)  # what was added besides h_prev + input
    torch.testing.assert_close(seen[0], model.positions.additive(model).detach().expand_as(seen[0]))
    torch.testing.assert_close(seen[1], torch.zeros_like(seen[1]))
    torch.testing.assert_close(seen[2], torch.zeros_like(seen[2]))


# --- errors --------------------------------------------------------------------------------------

def test_bad_inputs_raise_clear_errors():
    model = build_model(tiny(), 4)
    with pytest.raises(ValueError, match=r"shape \[B, 16\]"):
        model(torch.zeros(2, 15, dtype=torch.long))
    with pytest.raises(ValueError, match="values"):
        model(torch.full((2, 16), 5))
    with pytest.raises(TypeError, match="integer"):
        model(torch.zeros(2, 16))
    with pytest.raises(ValueError, match="iterations"):
        model(torch.zeros(2, 16, dtype=torch.long), iterations=0)
    with pytest.raises(ValueError, match="answer"):
        iteration_loss(torch.zeros(2, 2, 16, 4), torch.ones(2, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="mode"):
        iteration_loss(torch.zeros(2, 2, 16, 4), torch.ones(2, 16, dtype=torch.long), "last")
    with pytest.raises(ValueError, match="recurrence"):
        build_model(tiny(sharing="nested", recurrence="gated"), 4)
    with pytest.raises(ValueError, match="grid_size"):
        build_model(tiny(), 5)
    with pytest.raises(ValueError, match="model.block"):
        build_model(tiny(block="conv"), 4)
    with pytest.raises(TypeError, match="ModelConfig"):
        build_model(make_config("cpu-smoke"), 4)


# --- learning ------------------------------------------------------------------------------------

def test_memorises_a_handful_of_4x4_puzzles():
    torch.manual_seed(0)
    puzzle, answer = valid_4x4(16, blanks=8)
    cfg = make_config("cpu-smoke", "baseline").model
    model = build_model(dataclasses.replace(cfg, d_model=64, n_heads=4, d_ff=128, n_layers=2), 4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    start = time.perf_counter()
    for step in range(300):
        loss = iteration_loss(model(puzzle), answer)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == 299:
            model.eval()  # scored without the recipe's dropout 0.1, as evaluation scores
            with torch.no_grad():
                solved = (model(puzzle).logits[-1].argmax(-1) + 1 == answer).all(-1)
            model.train()
            if solved.all():
                break
    print(f"\nmemorised {int(solved.sum())}/16 puzzles at step {step} in {time.perf_counter() - start:.1f}s, loss {loss.item():.3f}")
    assert solved.all()


def test_fixed_random_init_starts_every_puzzle_alike_and_re_adds_the_puzzle():
    """exp_fixed_init.py: h starts from one fixed random vector per cell, and the encoded puzzle is added
    every iteration (its puzzle_proj), so the puzzle still reaches every step."""
    model = build_model(tiny(h_init="random"), 4)
    a, b = model.init_state(torch.zeros(3, 16, dtype=torch.long)), model.init_state(torch.ones(1, 16, dtype=torch.long))
    assert torch.equal(a["h"][0], b["h"][0]) and a["h"].std() > 0.5  # one fixed start for every puzzle
    assert "h0" in a and not torch.equal(a["h0"][0], b["h0"][0])  # the puzzle is re-added each iteration


def test_predictions_are_not_fed_back_when_disabled():
    model = build_model(tiny(feed_preds=False), 4)
    state = model.init_state(torch.zeros(2, 16, dtype=torch.long))
    state, _ = model.step(state, 0)
    changed = {**state, "preds": torch.rand_like(state["preds"])}
    torch.testing.assert_close(model.step(state, 1)[1], model.step(changed, 1)[1])


# --- what the scripts built ------------------------------------------------------------------------

def test_the_scripts_sinusoidal_positions_give_mirror_cells_of_a_diagonal_box_one_encoding():
    """exp_sinusoidal_pos.py indexed one 9-position table by row, column and box: cells (r, c) and (c, r) of a
    box on the diagonal get the same sum, so, both blank, the model cannot tell them apart (the log's 0 solved)."""
    model = build_model(tiny(pos="sinusoidal", d_model=32), 9)
    pos = model.positions.additive(model)
    assert torch.equal(pos[0 * 9 + 1], pos[1 * 9 + 0])  # (0, 1) and (1, 0), both in box 0
    assert not torch.equal(pos[0 * 9 + 1], pos[0 * 9 + 2])


def test_the_gate_blends_after_the_transformer_which_never_sees_h_prev():
    model = build_model(tiny(recurrence="gated", input="concat", pos="rcb"), 4).eval()
    seen = []
    model.cores[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0].clone()))
    state = model.init_state(torch.zeros(1, 16, dtype=torch.long))
    with torch.no_grad():
        state, _ = model.step(state, 0)
        other = {**state, "h": state["h"] + 1.0}  # another h_prev, the same predictions
        model.step(state, 1), model.step(other, 1)
    torch.testing.assert_close(seen[1], seen[2])  # the transformer's input does not depend on h_prev


def test_the_encoder_init_starts_every_layer_of_a_stack_the_same():
    """nn.TransformerEncoder deep-copies one layer; the sequel's custom RoPE layers do not."""
    copied = build_model(tiny(n_layers=3, init="encoder"), 4).cores[0].layers
    assert all(torch.equal(a, b) for a, b in zip(copied[0].parameters(), copied[2].parameters()))
    assert torch.equal(copied[0].attn.qkv.bias, torch.zeros_like(copied[0].attn.qkv.bias))  # MHA's zero biases
    own = build_model(tiny(n_layers=3, init="torch"), 4).cores[0].layers
    assert not torch.equal(own[0].attn.qkv.weight, own[2].attn.qkv.weight)
    two = build_model(tiny(n_layers=1, sharing="phased", n_phases=2, init="encoder"), 4).cores
    assert not torch.equal(two[0].layers[0].attn.qkv.weight, two[1].layers[0].attn.qkv.weight)  # two stacks


def test_the_head_is_a_linear_unless_asked_for_a_norm():
    assert [type(m).__name__ for m in build_model(tiny(), 4).head] == ["Linear"]
    assert [type(m).__name__ for m in build_model(tiny(head_norm=True), 4).head] == ["LayerNorm", "Linear"]


def test_dropout_sits_where_the_encoder_layer_has_it():
    """nn.TransformerEncoderLayer: dropout on the attention weights, after attention, after the FFN's
    activation and after the FFN; so in train mode two passes differ, in eval mode they agree."""
    model = build_model(tiny(dropout=0.5), 4)
    puzzle, _ = puzzles(4, batch=2)
    model.train()
    assert not torch.equal(model(puzzle).logits, model(puzzle).logits)
    model.eval()
    assert torch.equal(model(puzzle).logits, model(puzzle).logits)
    layer, calls = model.train().cores[0].layers[0], []
    real = model_lib.dropout
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(model_lib, "dropout", lambda x, p, training: calls.append(tuple(x.shape)) or real(x, p, training))
        layer(torch.zeros(1, 16, 16), None)
    # the attention weights [B, H, C, C], after attention, inside the FFN (d_ff wide), after it
    assert calls == [(1, 2, 16, 16), (1, 16, 16), (1, 16, 32), (1, 16, 16)]


def test_cpu_dropout_keeps_each_element_with_probability_1_minus_p_and_rescales():
    torch.manual_seed(0)
    for p in (0.1, 0.5):
        mask = model_lib.keep_mask((1_000_001,), p)
        assert mask.dtype == torch.bool and mask.shape == (1_000_001,)
        sigma = math.sqrt(p * (1 - p) / mask.numel())
        assert abs(mask.float().mean().item() - (1 - p)) < 5 * sigma
    x = torch.ones(200_000)
    y = model_lib.dropout(x, 0.1, True)
    assert torch.unique(y).tolist() == [0.0, pytest.approx(1 / 0.9)]
    assert abs(y.mean().item() - 1.0) < 0.01  # unbiased
    assert model_lib.dropout(x, 0.1, False) is x and model_lib.dropout(x, 0.0, True) is x


def test_dropout_off_the_cpu_is_torchs_and_the_written_out_attention_matches_sdpa(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.nn.functional, "dropout", lambda x, p, training: calls.append(x.device.type) or x)
    model_lib.dropout(torch.ones(3, device="meta"), 0.1, True)  # any non-CPU device takes F.dropout (Philox)
    assert calls == ["meta"]
    q, k, v = torch.randn(3, 2, 2, 9, 8).unbind(0)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    monkeypatch.setattr(model_lib, "keep_mask", lambda shape, p: torch.ones(shape, dtype=torch.bool))
    written = model_lib.attention(q, k, v, 0.5, True) * 0.5  # every weight kept, scaled by 1 / (1 - p)
    torch.testing.assert_close(written, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model_lib.attention(q, k, v, 0.5, False), expected)


def test_the_loss_is_the_blank_cells_cross_entropy_per_iteration_averaged():
    torch.manual_seed(0)
    logits = torch.randn(3, 2, 16, 4)
    answer = torch.randint(1, 5, (2, 16))
    puzzle = answer.clone()
    puzzle[:, ::2] = 0  # every other cell blank
    blank = puzzle == 0
    per_iter = [torch.nn.functional.cross_entropy(l[blank], answer[blank] - 1) for l in logits]
    cfg = tiny()
    torch.testing.assert_close(sequence_loss(logits, answer, puzzle, cfg), torch.stack(per_iter).mean())
    torch.testing.assert_close(sequence_loss(logits, answer, puzzle, dataclasses.replace(cfg, loss="final")), per_iter[-1])
    every = [torch.nn.functional.cross_entropy(l.reshape(-1, 4), answer.reshape(-1) - 1) for l in logits]
    torch.testing.assert_close(sequence_loss(logits, answer, puzzle, dataclasses.replace(cfg, loss_cells="all")),
                               torch.stack(every).mean())


def test_the_sequels_fixed_point_terms():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 16, 4, requires_grad=True)
    answer = torch.randint(1, 5, (1, 16))
    puzzle = torch.zeros(1, 16, dtype=torch.long)
    target = answer - 1
    held = logits[0].argmax(-1) == target  # cells iteration 0 had right
    ce = torch.nn.functional.cross_entropy(logits[1].transpose(1, 2), target, reduction="none")
    first = torch.nn.functional.cross_entropy(logits[0].transpose(1, 2), target, reduction="none").mean()
    probs = logits[1].softmax(-1)
    onehot = torch.nn.functional.one_hot(target, 4).float()
    expected = {
        "none": ce.mean(),
        "weight": (ce * (1 + held)).sum() / 16,
        "gradmask": (ce * ~held).sum() / 16,
        "l2": ce.mean() + ((probs - onehot).square().sum(-1) * held).sum() / held.sum(),
        "copy": ce.mean() + ((probs - logits[0].softmax(-1)).square().sum(-1) * held).sum() / held.sum(),
    }
    assert 0 < held.sum() < 16
    for term, second in expected.items():
        got = sequence_loss(logits, answer, puzzle, tiny(fixed_point=term))
        torch.testing.assert_close(got, (first + second) / 2, msg=term)


def test_the_q_head_predicts_solved_and_adds_its_weighted_loss():
    model = build_model(tiny(q_head=0.5), 4)
    assert torch.equal(model.q_head.weight, torch.zeros_like(model.q_head.weight)) and model.q_head.bias.item() == -5.0
    puzzle, answer = puzzles(4, batch=3)
    out = model(puzzle)
    assert out.q.shape == (2, 3)
    plain = sequence_loss(out.logits, answer, puzzle, dataclasses.replace(model.cfg, q_head=0.0))
    solved = ((out.logits.argmax(-1) + 1 == answer) | (puzzle > 0)).all(-1).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(out.q, solved)
    torch.testing.assert_close(sequence_loss(out, answer, puzzle, model.cfg), plain + 0.5 * bce)
