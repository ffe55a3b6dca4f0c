"""Behavioural fingerprints: what the computing code produces, recorded so that a change to it cannot pass
unseen (lib/provenance.py says why the results version rests on them).

    python -m lib.golden check     # compare the current code's fingerprints with tests/golden/ (the test does)
    python -m lib.golden certify   # after a refactor: record the new code as the current results version
    python -m lib.golden status    # exit 1 unless the computing code is the certified one (CI, make findings)

The certification is checked at the door (.ci/run, `make findings`), not by the tests: an edit in progress
keeps `make test-fast` green, and the code identity ("r3+edited.<hash>") already keeps its runs from being
reused as the certified version's.

The fingerprints, all on one CPU thread:
- data: puzzles generated at 4x4, 6x6 and 9x9 with their ratings, and the cpu-smoke and cpu-quick splits;
- every variant's config on cpu-smoke trained for a few steps: its losses and per-puzzle evaluation;
- the golden run: the cpu-smoke baseline trained in full, its metrics and per-puzzle results committed in
  tests/golden/cpu-smoke-baseline/.

`certify` records the current AST as RESULTS_VERSION's when every fingerprint is unchanged. When one
changed, it refuses until RESULTS_VERSION is bumped (which stales every earlier run) and then records the
new fingerprints. Floating-point results depend on the CPU's kernels, so the numbers are compared exactly
only on the machine that recorded them (lib/provenance.machine(): the CPU's vendor, family, model, stepping
and flags, torch and MKL) and to a tolerance elsewhere: two EPYCs that both report "AVX512" round apart.

    python -m lib.golden record    # on the certified tree: this machine's own exact fingerprints

Another machine can certify exactly once it holds a record of its own, made from the certified code
(`record` refuses an edited tree, and numbers that differ from the first record beyond the tolerance):
stash the computing modules' edits, `record`, unstash, `certify`.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lib import data as data_lib
from lib import files
from lib.sudoku import puzzles
from lib.config import ConfigError
from lib.experiments.resolve import VARIANTS, make_config
from lib.provenance import CERTIFIED, RESULTS_VERSION, ast_hash, certified, code_version, machine, machine_id
from lib.train import train

GOLDEN = CERTIFIED.parent
FINGERPRINTS = GOLDEN / "fingerprints.json"
GOLDEN_RUN = GOLDEN / "cpu-smoke-baseline"  # metrics.jsonl and eval.parquet of the full cpu-smoke baseline
SHORT = {"train.steps": 3, "schedule.warmup_steps": 1, "train.log_every": 1, "train.eval_every": 3,
         "train.checkpoint_every": 3, "train.threads": 1, "train.device": "cpu"}
TIMING = {"puzzles_per_second"}  # metrics rows no two runs share
LOSS_RTOL = 2e-5  # across machines: fp32 kernels sum in another order (about 1e-6 apart)
# the golden run's 150 steps amplify that rounding: its losses were 3.3e-3 apart at most on AVX512 against the
# AVX2 record (measured on the certified code), so across capabilities it is held to a wider band
GOLDEN_RUN_RTOL = 1e-2


def capability() -> str:
    return f"torch {torch.__version__.split('+')[0]} {torch.backends.cpu.get_cpu_capability()}"


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def data_fingerprint() -> dict:
    out = {}
    for n, count in ((4, 40), (6, 40), (9, 8)):
        q, a = puzzles.generate(n, count, seed=1, progress=False)
        r = puzzles.rate_many(q, progress=False)
        out[f"generated {n}x{n}"] = _digest(q, a, r["guesses"], r["guesses_full"], r["deduction_depth"])
    for preset in ("cpu-smoke", "cpu-quick"):
        splits = data_lib.load_splits(make_config(preset).data, progress=False)
        out[f"splits {preset}"] = _digest(*data_lib.to_arrays(splits.train), *data_lib.to_arrays(splits.test),
                                          np.asarray(splits.test["bucket"]).astype(str))
    return out


def rows(metrics: Path) -> list[dict]:
    return [r for r in map(json.loads, metrics.read_text().splitlines()) if r["metric"] not in TIMING]


def run_fingerprint(run: Path) -> dict:
    folder = files.RunFiles(run)
    ev = pd.read_parquet(folder.evals)
    losses = [r["value"] for r in rows(folder.metrics) if r["metric"] == "loss"]
    return {"losses": losses, "eval": _digest(ev["solved"].to_numpy(), ev["cell_acc"].to_numpy())}


def variant_fingerprints_of(names, tmp: Path) -> dict:
    """Each variant's config on cpu-smoke, a few steps: variants that share a config share the entry."""
    out, seen = {}, {}
    for name in names:
        try:
            cfg = make_config("cpu-smoke", name, SHORT)
        except ConfigError as e:
            out[name] = {"error": str(e)}
            continue
        key = json.dumps({**cfg.to_dict(), "variant": ""}, sort_keys=True)
        if key not in seen:
            train(cfg, tmp / name, progress=False)
            seen[key] = run_fingerprint(tmp / name)
        out[name] = seen[key]
    return out


def golden_run(out: Path) -> Path:
    train(make_config("cpu-smoke", "baseline", {"train.threads": 1, "train.device": "cpu"}), out, progress=False)
    return out


def fingerprints(tmp: Path) -> dict:
    with one_thread():
        return {"data": data_fingerprint(), "variants": variant_fingerprints_of(VARIANTS, tmp / "variants"),
                "golden run": run_fingerprint(golden_run(tmp / "golden"))}


def differences(new: dict, old: dict, exact: bool) -> list[str]:
    """What differs between two fingerprint sets: names and values, losses to LOSS_RTOL (the golden run's to
    GOLDEN_RUN_RTOL) unless exact, and (unless exact) no evaluation digests, which a tolerance cannot compare."""
    found = []
    for section in ("data", "variants", "golden run"):
        if section not in new and section not in old:
            continue
        a, b = new.get(section, {}), old.get(section, {})
        if section == "golden run":
            a, b = {"baseline": a}, {"baseline": b}
        for name in sorted(set(a) | set(b)):
            x, y = a.get(name), b.get(name)
            if not x or not y:
                found.append(f"{section}: {name} is {'new' if not y else 'gone'}")
            elif isinstance(x, str) or "error" in x or "error" in y:
                if x != y:
                    found.append(f"{section}: {name} changed")
            elif not _same_run(x, y, exact, GOLDEN_RUN_RTOL if section == "golden run" else LOSS_RTOL):
                found.append(f"{section}: {name} computes something else (losses {y['losses'][:3]}... -> "
                             f"{x['losses'][:3]}...)")
    return found


def _same_run(x: dict, y: dict, exact: bool, rtol: float = LOSS_RTOL) -> bool:
    if exact:
        return x == y
    return len(x["losses"]) == len(y["losses"]) and all(
        math.isclose(p, q, rel_tol=rtol) for p, q in zip(x["losses"], y["losses"]))


def machine_record(record: dict | None = None) -> Path:
    """Where a machine keeps its own fingerprints of the current results version (default: this one)."""
    return GOLDEN / f"fingerprints-{machine_id(record)}.json"


def recorded() -> dict:
    """This machine's own record of the current results version when there is one, else the first record."""
    own = files.read_json(machine_record(), {})
    return own if own.get("results_version") == RESULTS_VERSION else files.read_json(FINGERPRINTS, {})


def recorded_here(record: dict) -> bool:
    """Whether a record was made on this machine, so that its numbers can be compared exactly. Records from
    before machines were recorded name only a capability: never exact."""
    return record.get("machine") == machine()


def check(tmp: Path) -> tuple[list[str], bool]:
    """(differences from the recorded fingerprints, whether they were compared exactly)."""
    old = recorded()
    exact = recorded_here(old)
    new = fingerprints(tmp)
    return differences(new, old, exact), exact


def _record(new: dict) -> dict:
    return {"results_version": RESULTS_VERSION, "capability": capability(), "machine": machine(), **new}


def record(tmp: Path) -> str:
    """This machine's exact fingerprints of the certified code, beside the first record (another capability)."""
    first = files.read_json(FINGERPRINTS, {})
    if ast_hash() != certified().get("ast_hash") or first.get("results_version") != RESULTS_VERSION:
        raise SystemExit(f"the computing code is not the certified results version {RESULTS_VERSION}'s: record "
                         "on the certified tree (stash the edits of the computing modules first)")
    if recorded_here(first):
        raise SystemExit(f"{FINGERPRINTS.name} was recorded on this machine already")
    new = fingerprints(tmp)
    changed = differences(new, first, exact=False)
    if changed:
        raise SystemExit("this machine computes something else than the first record, beyond the tolerance:\n  "
                         + "\n  ".join(changed[:20]))
    path = machine_record()
    files.write_json(path, _record(new))
    return f"{path.name}: results version {RESULTS_VERSION} on {capability()}, within tolerance of the first record"


def certify(tmp: Path) -> str:
    """Record the current code as RESULTS_VERSION's; refuse a changed computation under the same version."""
    old = recorded()
    new = fingerprints(tmp)
    same_version = old.get("results_version") == RESULTS_VERSION
    if same_version and not recorded_here(old):
        raise SystemExit(f"the fingerprints were recorded on another machine ({old.get('capability')}, "
                         f"{json.dumps(old.get('machine', 'not recorded'))}), this one is {json.dumps(machine())}: "
                         "certify on the machine that recorded them, or give this machine a record of its own "
                         "first (python -m lib.golden record, on the certified tree)")
    changed = differences(new, old, exact=True)
    if changed and same_version:
        raise SystemExit("the computation changed under results version "
                         f"{RESULTS_VERSION}:\n  " + "\n  ".join(changed[:20]) +
                         "\nIf the change is meant, bump RESULTS_VERSION in lib/provenance.py (every earlier run "
                         "becomes stale) and certify again; if not, find what changed it.")
    if changed or not same_version:
        files.write_json(FINGERPRINTS, _record(new))
        _write_golden_run(tmp / "golden")
    files.write_json(CERTIFIED, {"results_version": RESULTS_VERSION, "ast_hash": ast_hash()})
    return (f"results version {RESULTS_VERSION}: " +
            ("new fingerprints recorded" if changed or not same_version else "every fingerprint unchanged") +
            f"; code {ast_hash()} certified")


def _write_golden_run(run: Path) -> None:
    folder = files.RunFiles(run)
    GOLDEN_RUN.mkdir(parents=True, exist_ok=True)
    files.write_text(GOLDEN_RUN / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows(folder.metrics)))
    ev = pd.read_parquet(folder.evals)
    files.atomic_write(GOLDEN_RUN / "eval.parquet", lambda t: ev.to_parquet(t, index=False))


def status() -> int:
    """0 when the computing code is the certified results version's, else 1 with what to do."""
    version = code_version()
    if version == f"r{RESULTS_VERSION}":
        print(f"certified: results version {RESULTS_VERSION}, code {ast_hash()}")
        return 0
    print(f"not certified: the computing modules are {version}. Run `make golden` (python -m lib.golden "
          "certify): a refactor is recorded as the current version, a change of what runs compute asks for a "
          "RESULTS_VERSION bump")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.golden", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["check", "certify", "record", "status"])
    args = parser.parse_args(argv)
    if args.command == "status":
        return status()
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        if args.command in ("certify", "record"):
            print((certify if args.command == "certify" else record)(Path(tmp)))
            return 0
        changed, exact = check(Path(tmp))
    print("\n".join(changed) or f"every fingerprint matches ({'exactly' if exact else f'to rel {LOSS_RTOL}'})")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
