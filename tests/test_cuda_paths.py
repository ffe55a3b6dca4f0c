"""The CUDA paths' Python, on a CPU: torch.cuda faked at the Python level (available, N devices, set_device and
the RNG calls recorded), so a Python-level error on the GPU path fails CI, which has no GPU."""
import pytest
import torch

from lib import files, train as train_mod
from lib.workbook import sweep
from lib.experiments.resolve import make_config
from lib.model import amp_dtype_for
from lib.train import Context, Dist


@pytest.fixture
def fake_cuda(monkeypatch):
    """A machine with `devices` CUDA devices that records what the code asks of them."""
    calls = {"set_device": [], "set_rng_state": []}
    precision = torch.get_float32_matmul_precision()

    def install(devices: int = 1):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: devices)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls["set_device"].append(torch.device(d)))
        monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": torch.full((8,), torch.device(device).index or 0, dtype=torch.uint8))
        monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": calls["set_rng_state"].append((state.clone(), torch.device(device))))
        torch.set_float32_matmul_precision("highest")
        return calls
    yield install
    torch.set_float32_matmul_precision(precision)  # process state: no monkeypatch


@pytest.mark.parametrize("setting, ranks, devices, want", [
    ("auto", Dist(), 1, "cuda:0"),  # it crashed here: torch.device("cuda") has no index for set_device
    ("cuda", Dist(), 2, "cuda:0"),
    ("cuda:1", Dist(), 2, "cuda:1"),
    ("auto", Dist(rank=3, world=4, local_rank=3), 4, "cuda:3"),  # torchrun: each rank its local GPU
])
def test_device_selection_always_names_an_index(fake_cuda, setting, ranks, devices, want):
    calls = fake_cuda(devices)
    cfg = make_config("gpu-paper", overrides={"train.device": setting})
    device, amp = train_mod.setup_device(cfg, ranks)
    assert device == torch.device(want) and calls["set_device"] == [torch.device(want)]
    assert amp is torch.bfloat16, "bf16 autocast on CUDA by default"
    assert torch.get_float32_matmul_precision() == "high"
    assert torch.backends.cuda.matmul.fp32_precision == "tf32"


@pytest.mark.parametrize("dtype, amp, tf32", [("auto", torch.bfloat16, True), ("bfloat16", torch.bfloat16, True),
                                               ("float32", None, False)])
def test_float32_is_plain_ieee_fp32_on_cuda(fake_cuda, dtype, amp, tf32):
    """The era-1 ablation scripts set neither autocast nor TF32: train.dtype=float32 runs them so."""
    fake_cuda(1)
    torch.set_float32_matmul_precision("highest" if tf32 else "high")
    _, got = train_mod.setup_device(make_config("gpu-paper", overrides={"train.dtype": dtype}), Dist())
    assert got is amp
    assert torch.backends.cuda.matmul.fp32_precision == ("tf32" if tf32 else "ieee")
    assert torch.backends.cuda.matmul.allow_tf32 is tf32, "the legacy flag reads, no error"
    assert make_config("gpu-paper", "no-iteration").train.dtype == "float32"


def test_a_device_the_machine_lacks_is_a_clear_error(fake_cuda):
    fake_cuda(2)
    with pytest.raises(RuntimeError, match="has 2 CUDA device"):
        train_mod.setup_device(make_config("gpu-paper", overrides={"train.device": "cuda:5"}), Dist())


def test_no_cuda_is_a_clear_error_and_auto_falls_back_to_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        train_mod.setup_device(make_config("cpu-smoke", overrides={"train.device": "cuda"}), Dist())
    device, amp = train_mod.setup_device(make_config("cpu-smoke"), Dist())
    assert device == torch.device("cpu") and amp is None


def test_dtype_choices():
    assert amp_dtype_for("auto", torch.device("cuda", 0)) is torch.bfloat16
    assert amp_dtype_for("auto", torch.device("cpu")) is None
    assert amp_dtype_for("float32", torch.device("cuda", 0)) is None
    assert amp_dtype_for("bfloat16", torch.device("cpu")) is torch.bfloat16


def test_rng_state_from_8_gpus_restores_on_1(fake_cuda):
    """A checkpoint written with every device's state (the old format) or with the run's own restores on a
    machine with one GPU (it raised IndexError)."""
    calls = fake_cuda(1)
    old = {"torch_rng": torch.get_rng_state(), "cuda_rng": [torch.full((8,), k, dtype=torch.uint8) for k in range(8)]}
    train_mod.restore_rng(old, torch.device("cuda", 0))
    state, device = calls["set_rng_state"][-1]
    assert device == torch.device("cuda", 0) and state[0].item() == 0
    new = {"torch_rng": torch.get_rng_state(), "cuda_rng": [torch.full((8,), 5, dtype=torch.uint8)]}
    train_mod.restore_rng(new, torch.device("cuda", 0))
    assert calls["set_rng_state"][-1][0][0].item() == 5
    train_mod.restore_rng(new, torch.device("cpu"))  # a CUDA checkpoint resumed on the CPU: no CUDA call
    assert len(calls["set_rng_state"]) == 2


def test_checkpoints_load_onto_the_run_s_device(monkeypatch, tmp_path):
    from lib import evaluate
    seen = {}
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.update(k) or real_load(*a, **k))
    run = tmp_path / "run"
    train_mod.train(make_config("cpu-smoke", overrides={"train.steps": 2, "train.eval_every": 2,
                                                        "train.checkpoint_every": 2, "schedule.warmup_steps": 1}),
                    run, progress=False)
    evaluate.load_model(run, "last", device="cpu")
    assert seen["map_location"] == "cpu" and seen["weights_only"] is True


def test_the_gpu_presets_compile_on_cuda_and_not_on_the_cpu(fake_cuda):
    fake_cuda(1)
    for preset in ("gpu-paper", "gpu-iters"):
        cfg = make_config(preset)
        cuda = Context(cfg, torch.device("cuda", 0), torch.bfloat16, Dist(), files.RunFiles("x"), False)
        cpu = Context(cfg, torch.device("cpu"), None, Dist(), files.RunFiles("x"), False)
        assert train_mod.compile_mode(cuda) == "default" and train_mod.compile_mode(cpu) is None
    mode = make_config("gpu-paper", overrides={"train.compile": "max-autotune"})
    assert train_mod.compile_mode(Context(mode, torch.device("cpu"), None, Dist(), files.RunFiles("x"), False)) == "max-autotune"
    assert make_config("gpu-paper", overrides={"train.compile": True}).train.compile == "default"  # the old bool
    assert make_config("gpu-paper", overrides={"train.compile": "false"}).train.compile == "off"


def test_a_sweep_runs_one_worker_per_visible_gpu(fake_cuda):
    fake_cuda(3)
    assert sweep.default_workers() == 3 and sweep.gpu_ids() == ["0", "1", "2"]


def test_a_sweep_without_gpus_runs_two_workers(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert sweep.default_workers() == 2 and sweep.gpu_ids() == []
