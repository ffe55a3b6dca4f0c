"""Seaborn figures for the notebooks. Each takes tidy frames (lib.workbook.results.Results, lib.findings) and returns a
Figure."""
from __future__ import annotations

import matplotlib

if not matplotlib.get_backend().lower().startswith(("module://", "inline", "nbagg", "widget", "ipympl")):
    matplotlib.use("Agg")  # headless shells and tests; notebooks keep their inline backend
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from lib.experiments.claims import CLAIMS, Claim
from lib.config import bucket_order
from lib.findings.stats import LEVEL

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
    if train.empty:  # an imported model (lib/workbook/share.py) has its results but no training curve
        ax_loss.set(title="no training loss logged here (an imported model)")
    else:
        sns.lineplot(data=train, x="step", y="value", ax=ax_loss, errorbar="sd", **variants)
        ax_loss.set(title="training loss (all iterations)", ylabel="cross-entropy", yscale="log")
    if several:  # one line per variant reads at a glance; the per-bucket detail is in the tables
        sns.lineplot(data=test[test["bucket"] == "all"], x="step", y="solved %", marker="o", ax=ax_solved,
                     errorbar="sd", **variants)
        ax_solved.set(title="all test puzzles solved at the trained iteration count", ylim=(-2, 102))
        ax_solved.legend(title="variant", bbox_to_anchor=(1.02, 1), loc="upper left")
        if ax_loss.get_legend() is not None:
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


# --- findings ------------------------------------------------------------------------------------

# floor: both sides solve almost nothing, and the interval says nothing (lib.findings.stats.at_floor)
VERDICT_COLORS = {"holds": "tab:green", "reversed": "tab:red", "inconclusive": "tab:gray",
                  "floor": "tab:orange"}


def forest_plot(compared: pd.DataFrame, claims: list[Claim] = CLAIMS, title: str = ""):
    """A - B overall per claim with its 95% CI, coloured by verdict; the shaded band is the margin of
    ≈ claims and the tolerated side of ≥ / ≤ claims."""
    overall = compared[compared["bucket"] == "all"].set_index("claim")
    shown = [c for c in claims if c.name in overall.index]
    fig, ax = plt.subplots(figsize=(9, 0.38 * len(shown) + 1.5))
    for y, c in enumerate(shown):
        lo, hi = {"≈": (-c.margin, c.margin), "≥": (-c.margin, 0), "≤": (0, c.margin)}.get(c.direction, (0, 0))
        ax.fill_betweenx([y - 0.4, y + 0.4], lo, hi, color="tab:blue", alpha=0.12, lw=0)
        if overall.loc[c.name, "verdict"] == "not run":
            ax.text(0, y, " not run", va="center", color="0.5", fontsize="small")
    done = overall.loc[[c.name for c in shown]].reset_index().assign(y=range(len(shown)))
    done = done[done["verdict"] != "not run"]
    ax.hlines(done["y"], done["CI low"], done["CI high"], color="0.3", lw=1.5)
    if len(done):
        sns.scatterplot(data=done, x="A - B (pp)", y="y", hue="verdict", palette=VERDICT_COLORS, s=60, ax=ax, zorder=3)
        ax.legend(title="verdict", bbox_to_anchor=(1.02, 1), loc="upper left")
    ax.set_yticks(range(len(shown)), [f"{c.name}: A {c.direction} B" for c in shown])
    ax.set_ylim(len(shown) - 0.5, -0.5)
    ax.axvline(0, color="black", lw=0.8)
    ax.set(xlabel=f"A - B: solved % at the trained iteration count (pp), {LEVEL:.1%} interval",
           ylabel="", title=title or "the log's claims: A - B per claim")
    fig.tight_layout()
    return fig


def variant_plot(per_seed: pd.DataFrame, title: str = ""):
    """Solved % at the trained count per variant and bucket (lib.findings.findings.per_seed); bars show the spread over
    seeds (sd)."""
    variants = list(dict.fromkeys(per_seed["variant"]))
    fig, ax = plt.subplots(figsize=(9, 0.3 * max(len(variants), 1) * 2 + 1.5))
    if len(per_seed):
        sns.pointplot(data=per_seed, x="solved %", y="variant", hue="bucket", order=variants,
                      hue_order=bucket_order(per_seed["bucket"]), errorbar="sd", dodge=0.5, linestyle="none",
                      palette="viridis_r", ax=ax)
        ax.legend(title="bucket", bbox_to_anchor=(1.02, 1), loc="upper left")
    else:
        ax.text(0.5, 0.5, "no runs yet", transform=ax.transAxes, ha="center")
    ax.set(xlabel="solved % at the trained iteration count (error bars: sd over seeds)", ylabel="",
           xlim=(-2, 102), title=title or "every variant, per bucket")
    fig.tight_layout()
    return fig


# --- test-time scaling -------------------------------------------------------------------------------

def scaling_curves(curve: pd.DataFrame, trained_iterations: int, title: str = "") -> plt.Figure:
    """Solved % against test-time iterations (log2 axis): all puzzles and each bucket, one line per variant,
    the band the spread over seeds; one row of panels per test source."""
    sources = list(dict.fromkeys(curve["source"]))
    buckets = ["all"] + [b for b in bucket_order(curve["bucket"]) if b != "all"]
    fig, axes = plt.subplots(len(sources), len(buckets), figsize=(3.2 * len(buckets), 3.2 * len(sources)),
                             squeeze=False, sharex=True, sharey=True)
    hue = dict(hue="variant", hue_order=list(dict.fromkeys(curve["variant"])))
    for r, source in enumerate(sources):
        for c, bucket in enumerate(buckets):
            ax = axes[r][c]
            part = curve[(curve["source"] == source) & (curve["bucket"] == bucket)]
            sns.lineplot(data=part, x="iteration", y="solved %", errorbar="sd", marker="o", markersize=3, ax=ax,
                         legend=(r, c) == (0, len(buckets) - 1), **hue)
            ax.set_xscale("log", base=2)
            ax.axvline(trained_iterations, color="grey", ls="--", lw=1)
            ax.set(title=f"{source}: {bucket}", ylim=(-2, 102), xlabel="test-time iterations (log2)")
    legend = axes[0][-1].get_legend()
    if legend is not None:
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def fixed_point_share(curve: pd.DataFrame, trained_iterations: int, title: str = "") -> plt.Figure:
    """The share of puzzles whose prediction did not change since the iteration before, per variant."""
    part = curve[curve["bucket"] == "all"]
    fig, ax = plt.subplots(figsize=(8, 4))
    sns.lineplot(data=part, x="iteration", y="fixed point %", hue="variant", style="source", errorbar="sd", ax=ax)
    ax.set_xscale("log", base=2)
    ax.axvline(trained_iterations, color="grey", ls="--", lw=1)
    ax.set(xlabel="test-time iterations (log2)", ylabel="puzzles on a fixed point %", ylim=(-2, 102),
           title=title or "fixed points")
    ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    return fig
