"""Run a command as on a GPU image that has only the numeric stack (torch, numpy, pandas, pyarrow,
numba, pyyaml, tqdm): every other package the workbook installs cannot be imported.

    python tests/gpu_image.py -m lib.cli train --preset cpu-smoke ...
    python tests/gpu_image.py scripts/gpu_check.py --quick

With $GPU_IMAGE_REPORT set, the third-party packages the command imported are written there at
exit, one a line, so a test can hold them to the numeric stack.
"""
import atexit
import importlib.abc
import importlib.util
import os
import runpy
import sys
import sysconfig

BLOCKED = {
    "papermill", "nbformat", "nbconvert", "nbclient", "jupyter", "jupyter_client", "jupyter_core",
    "jupyter_server", "jupyterlab", "ipykernel", "ipywidgets", "IPython", "zmq", "traitlets",
    "datasets", "huggingface_hub", "submitit", "playwright", "matplotlib", "seaborn",
    "safetensors", "tensorboard", "scipy", "sklearn", "hypothesis", "pytest",
}


class Blocker(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the blocked packages, so that importlib.util.find_spec (which torch calls to look for
    optional ones) does not raise, and fails their import as if they were not installed."""

    def find_spec(self, name, path=None, target=None):
        blocked = name.split(".")[0] in BLOCKED
        return importlib.util.spec_from_loader(name, self) if blocked else None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise ModuleNotFoundError(f"No module named {module.__name__!r} (not on the GPU image)",
                                  name=module.__name__)


def third_party() -> list[str]:
    """Top-level packages imported from site-packages."""
    site = sysconfig.get_paths()["purelib"]
    names = {name.split(".")[0] for name, module in list(sys.modules.items())
             if (getattr(module, "__file__", None) or "").startswith(site)}
    return sorted(n for n in names if not n.startswith("__editable__"))


def report() -> None:
    with open(os.environ["GPU_IMAGE_REPORT"], "w") as f:
        f.write("\n".join(third_party()) + "\n")


def main(argv: list[str]) -> None:
    sys.meta_path.insert(0, Blocker())
    if os.environ.get("GPU_IMAGE_REPORT"):
        atexit.register(report)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if argv[0] == "-m":
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
