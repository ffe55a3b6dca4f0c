"""Watch one puzzle being solved (or failed) iteration by iteration: an ipywidgets explorer for one run.

    ex = Explorer(run_dir)
    ex.widget          # controls, the grid at the slider's iteration, the puzzle's accuracy curve
    static_strip(ex)   # a few example puzzles across the iterations, as plain HTML for static reports

The model runs once per puzzle, to 2x the trained count, and the trace is cached: moving the slider
only redraws HTML (`Explorer.model_calls` counts the runs). Grids and curves are plain HTML/SVG with
inline styles, so they render the same in JupyterLab and in an offline HTML report.
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from lib.workbook import analysis, workbook
from lib import files
from lib.evaluate import load_model, load_run
from lib.sudoku import puzzles as puzzles_lib

ANY = "any"
COLOURS = {"given": ("#222", "#e3e3e3"), "correct": ("#17672e", "#dff3e4"), "wrong": ("#b3261e", "#fbe0de"),
           "predicted": ("#1f3b8c", "#ffffff")}  # (text, background); "predicted": the answer is unknown
CHANGED = "inset 0 0 0 3px #f0a020"  # an orange ring
CONFLICT = "underline wavy #c000c0"  # a magenta wavy underline under the digit


# --- drawing -----------------------------------------------------------------------------------------

def cell_kinds(puzzle: np.ndarray, prediction: np.ndarray, answer: np.ndarray | None) -> np.ndarray:
    """(C,) 'given', 'correct', 'wrong', or 'predicted' when there is no answer to compare with."""
    if answer is None or not np.asarray(answer).any():
        blank = np.full(puzzle.shape, "predicted", object)
    else:
        blank = np.where(prediction == answer, "correct", "wrong").astype(object)
    return np.where(puzzle > 0, "given", blank)


def grid_html(puzzle: np.ndarray, prediction: np.ndarray, confidence: np.ndarray, answer: np.ndarray | None = None,
              previous: np.ndarray | None = None, cell_px: int = 44) -> str:
    """One iteration's grid as an HTML table: givens grey, correct green, wrong red, cells changed since
    `previous` ringed orange, digits that repeat in a row, column or box underlined magenta, and each
    blank cell's confidence (softmax max) under its digit. Every <td> carries data-kind, data-changed
    and data-conflict attributes."""
    n = round(len(puzzle) ** 0.5)
    box_rows, box_cols = puzzles_lib.box_shape(n)
    kinds = cell_kinds(puzzle, prediction, answer)
    shown = np.where(puzzle > 0, puzzle, prediction)
    clash = analysis.conflicts(shown)
    changed = np.zeros(len(puzzle), bool) if previous is None else (previous != prediction) & (puzzle == 0)
    rows = []
    for r in range(n):
        cells = []
        for c in range(n):
            i = r * n + c
            fg, bg = COLOURS[kinds[i]]
            style = [(f"width:{cell_px}px;height:{cell_px}px;color:{fg};background:{bg};text-align:center;"
                      "vertical-align:middle;padding:0;font-family:sans-serif;line-height:1.05;"
                      f"border:1px solid #999;font-size:{cell_px // 2}px")]
            if r % box_rows == 0:
                style.append("border-top:3px solid #222")
            if c % box_cols == 0:
                style.append("border-left:3px solid #222")
            if r == n - 1:
                style.append("border-bottom:3px solid #222")
            if c == n - 1:
                style.append("border-right:3px solid #222")
            if changed[i]:
                style.append(f"box-shadow:{CHANGED}")
            digit = f"<span style='text-decoration:{CONFLICT}'>{shown[i]}</span>" if clash[i] else str(shown[i])
            conf = "" if puzzle[i] else f"<br><span style='font-size:{cell_px // 4}px;color:#555'>{confidence[i]:.2f}</span>"
            cells.append(f"<td data-cell='{i}' data-kind='{kinds[i]}' data-changed='{int(changed[i])}' "
                         f"data-conflict='{int(clash[i])}' style='{';'.join(style)}'>{digit}{conf}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return ("<table class='sudoku-grid' style='border-collapse:collapse;margin:4px'>"
            + "".join(rows) + "</table>")


def legend_html() -> str:
    swatch = "display:inline-block;padding:1px 6px;margin-right:6px;border:1px solid #999"
    items = [f"<span style='{swatch};color:{fg};background:{bg}'>{kind}</span>" for kind, (fg, bg) in COLOURS.items()
             if kind != "predicted"]
    items.append(f"<span style='{swatch};box-shadow:{CHANGED}'>changed since previous</span>")
    items.append(f"<span style='{swatch}'><span style='text-decoration:{CONFLICT}'>7</span> repeats in a unit</span>")
    items.append("<span style='font-size:85%;color:#555'>small number: the model's confidence (softmax max)</span>")
    return "<div style='font-family:sans-serif;font-size:13px;margin:4px 0'>" + "".join(items) + "</div>"


def curve_svg(cell_acc: np.ndarray, solved: np.ndarray, current: int, trained: int,
              width: int = 360, height: int = 220) -> str:
    """This puzzle's blank-cell accuracy against the iteration: solved iterations as filled dots, the trained
    count dashed, the current iteration as a red marker."""
    left, right, top, bottom = 46, 12, 24, 36
    t = len(cell_acc)
    x = lambda it: left + (it - 1) / max(t - 1, 1) * (width - left - right)
    y = lambda acc: top + (1 - acc) * (height - top - bottom)
    parts = [(f"<svg class='accuracy-curve' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
              "style='font-family:sans-serif;font-size:11px'>"),
             f"<text x='{width / 2}' y='14' text-anchor='middle' font-size='12'>this puzzle: cell accuracy by iteration</text>"]
    for acc in (0, 0.5, 1):
        parts.append(f"<line x1='{left}' x2='{width - right}' y1='{y(acc)}' y2='{y(acc)}' stroke='#ddd'/>"
                     f"<text x='{left - 4}' y='{y(acc) + 4}' text-anchor='end'>{int(acc * 100)}%</text>")
    for it in sorted({1, trained, t}):
        parts.append(f"<text x='{x(it)}' y='{height - bottom + 14}' text-anchor='middle'>{it}</text>")
    parts.append(f"<text x='{(left + width - right) / 2}' y='{height - 4}' text-anchor='middle'>iteration</text>")
    parts.append(f"<line x1='{x(trained)}' x2='{x(trained)}' y1='{top}' y2='{height - bottom}' stroke='#888' "
                 "stroke-dasharray='4 3'/>"
                 f"<text x='{x(trained) + 3}' y='{top + 10}' fill='#888'>trained</text>")
    points = " ".join(f"{x(i + 1):.1f},{y(a):.1f}" for i, a in enumerate(cell_acc))
    parts.append(f"<polyline points='{points}' fill='none' stroke='#1f77b4' stroke-width='2'/>")
    for i, (a, s) in enumerate(zip(cell_acc, solved)):
        parts.append(f"<circle cx='{x(i + 1):.1f}' cy='{y(a):.1f}' r='3' stroke='#1f77b4' "
                     f"fill='{'#1f77b4' if s else 'white'}'/>")
    parts.append(f"<line class='current' x1='{x(current)}' x2='{x(current)}' y1='{top}' y2='{height - bottom}' "
                 f"stroke='#d62728' stroke-width='2'/>")
    parts.append("</svg>")
    return "".join(parts)


# --- the explorer ------------------------------------------------------------------------------------

class Explorer:
    """One run's test puzzles, traced on demand and cached, with the widgets to browse them."""

    def __init__(self, run_dir: str | Path, checkpoint: str = "last", max_iterations: int | None = None):
        run = load_run(run_dir)
        cfg = run.run_config
        self.run_dir = Path(run_dir)
        self.trained = cfg.model.iterations
        self.max_iterations = int(max_iterations or 2 * self.trained)
        self.grid_size = cfg.data.grid_size
        self.model = load_model(run_dir, checkpoint)  # "last" is what eval.parquet, and so the outcomes, used
        self.puzzles, self.answers, self.meta = analysis.run_puzzles(run)
        self.meta["outcome"] = (analysis.outcomes(run.evals).reindex(self.meta["puzzle"]).to_numpy()
                                if run.evals is not None else "unknown")
        self.model_calls = 0
        self._traces: dict[str, analysis.Trace] = {}
        self._current: analysis.Trace | None = None
        self._row = None
        self.widget = self._build()  # selects the first puzzle, so one model call happens here

    # inference, once per puzzle
    def trace_of(self, puzzle: np.ndarray, answer: np.ndarray | None) -> analysis.Trace:
        key = puzzles_lib.format(puzzle)
        if key not in self._traces:
            self.model_calls += 1
            self._traces[key] = analysis.trace(self.model, puzzle[None], None if answer is None else answer[None],
                                               self.max_iterations, trained_iterations=self.trained)
        return self._traces[key]

    def matching(self, bucket: str = ANY, outcome: str = ANY) -> pd.DataFrame:
        """The test puzzles of a bucket and outcome (ANY for all)."""
        m = self.meta
        keep = ((m["bucket"] == bucket) | (bucket == ANY)) & ((m["outcome"] == outcome) | (outcome == ANY))
        return m[keep]

    def parse(self, text: str) -> tuple[np.ndarray, np.ndarray | None]:
        """A pasted puzzle string -> (flat puzzle, its answer when unique, else None)."""
        grid = puzzles_lib.parse(text, source="pasted puzzle")
        if grid.shape[0] != self.grid_size:
            raise puzzles_lib.PuzzleError(f"pasted puzzle: this run's model plays {self.grid_size}x{self.grid_size} "
                                          f"grids ({self.grid_size ** 2} characters), the puzzle is "
                                          f"{grid.shape[0]}x{grid.shape[0]}")
        solution = puzzles_lib.solve(grid)
        return grid.reshape(-1), solution.grid.reshape(-1) if solution.n_solutions == 1 else None

    def view(self, tr: analysis.Trace, iteration: int) -> tuple[str, str]:
        """(grid HTML, curve SVG) of a one-puzzle trace at `iteration` (1-based)."""
        if not 1 <= iteration <= tr.iterations:
            raise ValueError(f"iteration must be in 1..{tr.iterations}, got {iteration}")
        t = iteration - 1
        answer = tr.answers[0] if tr.answers[0].any() else None
        previous = tr.predictions[0, t - 1] if t else None
        grid = grid_html(tr.puzzles[0], tr.predictions[0, t], tr.confidences[0, t], answer, previous)
        frame = analysis.per_iteration(tr)
        curve = curve_svg(frame["cell_acc"].to_numpy(), frame["solved"].to_numpy(), iteration, tr.trained_iterations)
        return grid, curve

    def _repr_mimebundle_(self, **kwargs):
        # A static report has no kernel to drive the widget: it falls back to this line of text
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = (f"Explorer of {self.run_dir.name}: interactive in JupyterLab with a live kernel; "
                                "a static report shows the strip of example puzzles instead.")
        return bundle

    # widgets
    def _build(self):
        import ipywidgets as w

        buckets = [ANY] + list(dict.fromkeys(self.meta["bucket"]))
        self.bucket = w.Dropdown(options=buckets, value=ANY, description="bucket")
        self.outcome = w.Dropdown(options=[ANY, *analysis.OUTCOMES], value=ANY, description="outcome")
        self.puzzle = w.Dropdown(description="puzzle", layout=w.Layout(width="360px"))
        self.index = w.BoundedIntText(min=0, max=len(self.puzzles) - 1, description="index",
                                      layout=w.Layout(width="160px"))
        self.pasted = w.Text(placeholder=f"or paste a {self.grid_size}x{self.grid_size} puzzle ('.' or 0 for blanks)",
                             layout=w.Layout(width="420px"))
        self.show_pasted = w.Button(description="show pasted")
        self.slider = w.IntSlider(value=self.trained, min=1, max=self.max_iterations, description="iteration",
                                  continuous_update=True, layout=w.Layout(width="420px"))
        self.play = w.Play(value=self.trained, min=1, max=self.max_iterations, interval=700, description="play")
        w.jslink((self.play, "value"), (self.slider, "value"))
        self.grid, self.curve = w.HTML(), w.HTML()
        self.status = w.HTML()
        for widget, name in ((self.grid, "grid"), (self.slider, "slider"), (self.status, "status")):
            widget.add_class(f"explorer-{name}")  # stable handles for the browser check

        self.bucket.observe(lambda _: self._refilter(), "value")
        self.outcome.observe(lambda _: self._refilter(), "value")
        self.puzzle.observe(lambda ch: ch["new"] is not None and self.show_puzzle(ch["new"]), "value")
        self.index.observe(lambda ch: self.jump(ch["new"]), "value")
        self.slider.observe(lambda _: self._render(), "value")
        self.show_pasted.on_click(lambda _: self.show_text(self.pasted.value))
        box = w.VBox([w.HBox([self.bucket, self.outcome, self.puzzle, self.index]),
                       w.HBox([self.pasted, self.show_pasted]),
                       w.HBox([self.play, self.slider]),
                       w.HBox([self.grid, self.curve]),
                       self.status, w.HTML(legend_html())])
        self._refilter()
        return box

    def _refilter(self) -> None:
        rows = self.matching(self.bucket.value, self.outcome.value)
        self.puzzle.options = [(f"#{r.puzzle}  bucket {r.bucket}, {r.outcome}", int(r.puzzle)) for r in rows.itertuples()]
        if len(rows) and self.puzzle.value is None:
            self.puzzle.value = int(rows["puzzle"].iloc[0])
        if rows.empty:
            self.status.value = "<b>no test puzzle matches this bucket and outcome</b>"

    def jump(self, index: int) -> None:
        """Select test puzzle `index` in the puzzle list, clearing filters that hide it."""
        if index not in {value for _, value in self.puzzle.options}:
            self.bucket.value = self.outcome.value = ANY
        self.puzzle.value = index

    def show_puzzle(self, index: int) -> None:
        """Show test puzzle `index` (its row in eval.parquet)."""
        if not 0 <= index < len(self.puzzles):
            raise IndexError(f"puzzle index must be in 0..{len(self.puzzles) - 1}, got {index}")
        self.index.value = index
        self._show(self.trace_of(self.puzzles[index], self.answers[index]), self.meta.iloc[index])

    def show_text(self, text: str) -> None:
        """Show a pasted puzzle; a bad string is reported in the status line, not raised."""
        try:
            puzzle, answer = self.parse(text)
        except puzzles_lib.PuzzleError as e:
            self.status.value = f"<b style='color:#b3261e'>{html.escape(str(e))}</b>"
            return
        self._show(self.trace_of(puzzle, answer), None)

    def _show(self, tr: analysis.Trace, row) -> None:
        self._current, self._row = tr, row
        self._render()

    def _render(self) -> None:
        if self._current is None:
            return
        it = self.slider.value
        self.grid.value, self.curve.value = self.view(self._current, it)
        frame = analysis.per_iteration(self._current).iloc[it - 1]
        what = ("pasted puzzle" + ("" if self._current.answers.any() else " (no unique answer: not scored)")
                if self._row is None else f"puzzle #{self._row.puzzle}, bucket {self._row.bucket}, "
                f"deduction depth {self._row.deduction_depth}, rating {self._row.rating}, {self._row.outcome}")
        self.status.value = (f"<span style='font-family:sans-serif'>{html.escape(what)} | iteration {it} "
                             f"(trained {self.trained}) | cell accuracy {100 * frame['cell_acc']:.0f}% | "
                             f"{'solved' if frame['solved'] else 'not solved'} | "
                             f"{frame['violations']} conflicting cells | {frame['changed']} changed</span>")


def examples(ex: Explorer, per_outcome: int = 1) -> list[int]:
    """A few test puzzles to show statically: per outcome, the first ones of the hardest bucket that has it."""
    picks = []
    for outcome in analysis.OUTCOMES:
        rows = ex.matching(outcome=outcome)
        hardest = rows[rows["bucket"] == rows["bucket"].iloc[-1]] if len(rows) else rows
        picks += hardest.sort_values("bucket", kind="stable")["puzzle"].head(per_outcome).tolist()
    return picks


def static_strip(ex: Explorer, puzzles: list[int] | None = None, columns: int = 8) -> str:
    """Example puzzles across iterations 1..2x trained (at most `columns` of them), one row per puzzle,
    as self-contained HTML: the static report's stand-in for the widget."""
    puzzles = examples(ex) if puzzles is None else puzzles
    its = np.unique(np.linspace(1, ex.max_iterations, min(columns, ex.max_iterations)).round().astype(int))
    rows = []
    for index in puzzles:
        tr = ex.trace_of(ex.puzzles[index], ex.answers[index])
        m = ex.meta.iloc[index]
        cells = "".join(f"<td style='padding:2px;text-align:center;font-family:sans-serif;font-size:12px'>"
                        f"iteration {it}{' (trained)' if it == ex.trained else ''}"
                        f"{ex.view(tr, int(it))[0]}</td>" for it in its)
        rows.append(f"<tr><td style='font-family:sans-serif;font-size:12px;padding-right:8px'>#{index}<br>bucket "
                    f"{html.escape(str(m.bucket))}<br>{html.escape(str(m.outcome))}</td>{cells}</tr>")
    return (f"<div class='explorer-strip'>{legend_html()}<div style='overflow-x:auto'><table>{''.join(rows)}"
            "</table></div></div>")


def newest_run(outputs: str | Path, family: str = "baseline") -> Path | None:
    """The newest finished training run (eval.parquet and a last checkpoint) under outputs/<family>/*/runs/."""
    runs = [files.RunFiles(p.parent.parent) for p in Path(outputs).glob(f"{family}/*/runs/*/checkpoints/last.pt")]
    done = [r for r in runs if r.evals.exists()]
    return max(done, key=lambda r: r.evals.stat().st_mtime).root if done else None


def default_run(run_dir: str, output_dir: Path, preset: str = "cpu-smoke", seed: int = 0, reuse: bool | str = True,
                device: str = "auto", overrides: dict | None = None) -> Path:
    """`run_dir` if given; else the newest 01_baseline run beside this notebook's outputs; else a fresh
    `preset` baseline trained into output_dir/runs/."""
    if run_dir:
        if not files.RunFiles(run_dir).config.exists():
            raise FileNotFoundError(f"run_dir {run_dir} is not a training run folder (no config.json)")
        return Path(run_dir)
    found = newest_run(Path(output_dir).resolve().parent.parent)
    if found is not None:
        return found
    print(f"no finished baseline run found: training {preset} first")
    return workbook.train_runs(preset, ["baseline"], [seed], output_dir, device=device, overrides=overrides,
                               reuse=reuse, progress=False)[0]


def show_strip(ex: "Explorer", puzzles=None, columns: int = 8):
    """The static strip as a displayable HTML object (what a shared report shows instead of the widget)."""
    from IPython.display import HTML
    return HTML(static_strip(ex, puzzles, columns))
