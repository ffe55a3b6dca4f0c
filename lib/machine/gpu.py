"""What a CUDA machine needs said once: TF32 through the current API, and a warning when the
machine has an NVIDIA GPU that this torch cannot use, so that `train.device=auto` never trains on
the CPU for hours unsaid."""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import torch

log = logging.getLogger("lib.gpu")

NVIDIA_PROC = Path("/proc/driver/nvidia")  # the kernel driver's files, there when a GPU is exposed


def set_tf32(on: bool) -> None:
    """TF32 matmuls on CUDA on or off, through torch.set_float32_matmul_precision ("high" or
    "highest"), as the log's scripts set it. Not the legacy allow_tf32 flags: once anything in the
    process has used the newer API, reading the precision raises ("a mix of the legacy and new
    APIs"), inside torch.compile too. cuDNN's flags steer convolutions and RNNs, which these models
    do not have."""
    torch.set_float32_matmul_precision("high" if on else "highest")


def nvidia_gpu() -> bool:
    """Whether the machine exposes an NVIDIA GPU, whatever torch can do with it."""
    gpus = NVIDIA_PROC / "gpus"
    return (gpus.is_dir() and any(gpus.iterdir())) or Path("/dev/nvidia0").exists()


def driver_version() -> str:
    """The kernel driver's version ("580.65.06"), or "unknown"."""
    try:
        words = (NVIDIA_PROC / "version").read_text().split()
    except OSError:
        return "unknown"
    return next((w for w in words if w[:1].isdigit() and "." in w), "unknown")


def unusable_gpu() -> str:
    """Why torch cannot use this machine's NVIDIA GPU, or "" (no such GPU, or torch can)."""
    if torch.cuda.is_available() or not nvidia_gpu():
        return ""
    here = "this machine has an NVIDIA GPU"
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden in ("", "-1"):
        return f"{here}, but CUDA_VISIBLE_DEVICES={hidden!r} hides it"
    if torch.version.cuda is None:
        return (f"{here}, but torch {torch.__version__} is a CPU build: install a CUDA build "
                f"(https://pytorch.org/get-started/locally/), or use a python that has one")
    return (f"{here} (driver {driver_version()}), but torch {torch.__version__}, built for CUDA "
            f"{torch.version.cuda}, cannot use it: most likely the driver is too old for that "
            f"CUDA (CUDA 12 needs driver 525 or newer, CUDA 13 needs 580). Update the driver, or "
            f"install a torch built for the CUDA that `nvidia-smi` names")


def warn_if_unusable() -> None:
    """A warning, and a log line, when an NVIDIA GPU is there but the run falls back to the CPU."""
    reason = unusable_gpu()
    if reason:
        log.warning("%s; training on the CPU", reason)
        warnings.warn(f"{reason}; training on the CPU", RuntimeWarning, stacklevel=2)
