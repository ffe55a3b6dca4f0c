"""Seaborn figures for the notebooks. Each takes tidy frames (lib.results.Results) and returns a Figure."""
from __future__ import annotations

import matplotlib

if not matplotlib.get_backend().lower().startswith(("module://", "inline", "nbagg", "widget", "ipympl")):
    matplotlib.use("Agg")  # headless shells and tests; notebooks keep their inline backend
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from lib.config import bucket_order

sns.set_theme(style="whitegrid", context="notebook")


def _bucket_order(df: pd.DataFrame) -> list[str]:
    return [b for b in bucket_order(df["bucket"]) if b != "all"]


def learning_curves(metrics: pd.DataFrame, trained_iterations: int, title: str = "") -> plt.Figure:
    """Training loss, and test solved % against step: by bucket for one variant, overall by variant for several."""
    train = metrics[(metrics["split"] == "train") & (metrics["metric"] == "loss")]
    test = metrics[(metrics["split"] == "test") & (metrics["metric"] == "solved")
                   & (metrics["iterations"] == metrics["trained_iterations"])].copy()  # each run at its own count
    test["solved %"] = 100 * test["value"]
    several = metrics["variant"].nunique() > 1
    fig, (ax_loss, ax_solved) = plt.subplots(1, 2, figsize=(13, 4.5))
    variants = dict(hue="variant", hue_order=list(dict.fromkeys(metrics["variant"]))) if several else {}
    sns.lineplot(data=train, x="step", y="value", ax=ax_loss, errorbar="sd", **variants)
    ax_loss.set(title="training loss (all iterations)", ylabel="cross-entropy", yscale="log")
    if several:  # one line per variant reads at a glance; the per-bucket detail is in the tables
        sns.lineplot(data=test[test["bucket"] == "all"], x="step", y="solved %", marker="o", ax=ax_solved,
                     errorbar="sd", **variants)
        ax_solved.set(title="all test puzzles solved at the trained iteration count", ylim=(-2, 102))
        ax_solved.legend(title="variant", bbox_to_anchor=(1.02, 1), loc="upper left")
        ax_loss.get_legend().remove()
    else:
        order = _bucket_order(test) + ["all"]
        sns.lineplot(data=test, x="step", y="solved %", hue="bucket", hue_order=order, marker="o", ax=ax_solved,
                     errorbar="sd", palette="viridis_r")
        ax_solved.set(title=f"test puzzles solved at {trained_iterations} iterations", ylim=(-2, 102))
        ax_solved.legend(title="bucket", bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def failure_iterations(evals: pd.DataFrame, trained_iterations: int, title: str = "") -> plt.Figure:
    """Solved % and cell accuracy against iteration, including iterations beyond training:
    by bucket for one variant, over all test puzzles by variant for several."""
    several = evals["variant"].nunique() > 1
    group = ["variant", "seed", "iteration"] + ([] if several else ["bucket"])
    per_iter = evals.groupby(group, observed=True).agg(solved=("solved", "mean"), cell_acc=("cell_acc", "mean")).reset_index()
    per_iter["solved %"] = 100 * per_iter["solved"]
    per_iter["cell accuracy % (blanks)"] = 100 * per_iter["cell_acc"]
    if several:
        hue = dict(hue="variant", hue_order=list(dict.fromkeys(evals["variant"])))
    else:
        hue = dict(hue="bucket", hue_order=_bucket_order(per_iter), palette="viridis_r")
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for ax, y in zip(axes, ["solved %", "cell accuracy % (blanks)"]):
        sns.lineplot(data=per_iter, x="iteration", y=y, ax=ax, errorbar="sd", **hue)
        ax.axvline(trained_iterations, color="grey", ls="--", lw=1)
        ax.axvspan(trained_iterations, per_iter["iteration"].max(), color="grey", alpha=0.08)
        ax.text(trained_iterations, ax.get_ylim()[0], " beyond trained", color="grey", va="bottom")
        ax.set(title=f"{y} by iteration" + (" (all test puzzles)" if several else ""))
        ax.legend(title=hue["hue"], fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def compare_variants(results, title: str = "") -> plt.Figure:
    """Final solved % per bucket, one bar per variant (mean over seeds; sd as error bar)."""
    s = results.summaries
    cols = [c for c in s.columns if str(c).startswith("final:")]
    df = s.melt(id_vars=["variant", "seed"], value_vars=cols, var_name="bucket", value_name="solved %")
    df["bucket"] = df["bucket"].str.removeprefix("final:")
    order = _bucket_order(df) + ["all"]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    sns.barplot(data=df, x="bucket", y="solved %", hue="variant", hue_order=list(dict.fromkeys(s["variant"])),
                order=order, errorbar="sd", ax=ax)
    ax.set(title=f"final solved % by bucket\n{title}", ylim=(0, 105))
    ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    return fig
