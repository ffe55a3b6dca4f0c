"""lib/sudoku/puzzles.py: parsing, validation, solving, ratings, symmetries, canonical forms, generation."""
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import apply_symmetry
from lib.sudoku import puzzles as P
from lib.sudoku.puzzles import NEEDS_GUESS, PuzzleError

BENCH = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "external" / "benchmark_sets.csv"
needs_bench = pytest.mark.skipif(not BENCH.exists(), reason="benchmark_sets.csv not found beside the repo")
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

GRID4 = "1234341221434321"  # a valid 4x4 solution
PUZZLE17 = ".................1.....2.3......3.2...1.4......5....6..3......4.7..8...962...7..."
ANSWER17 = "953168742862734951417952836746893125281645397395271468138529674574386219629417583"


@pytest.fixture(scope="module")
def bench():
    return pd.read_csv(BENCH, dtype={"question": str, "answer": str, "source": str, "rating": int})


@pytest.fixture(scope="module")
def generated():
    """A few generated (puzzle, answer) batches per size, reused across tests."""
    return {n: P.generate(n, 40, seed=n, progress=False) for n in (4, 6, 9)}


def is_valid_solution(grid: np.ndarray) -> bool:
    n = grid.shape[0]
    units = P._tables(n)[1]
    vals = grid.reshape(-1)[units]
    return bool((np.sort(vals, axis=1) == np.arange(1, n + 1)).all())


# --- parsing, formatting, errors -----------------------------------------------------------------

@pytest.mark.parametrize("n", [4, 6, 9])
def test_parse_format_round_trip(generated, n):
    puzzles, answers = generated[n]
    for g in list(puzzles[:10]) + list(answers[:10]):
        s = P.format(g)
        assert len(s) == n * n and P.format(P.parse(s)) == s
        assert np.array_equal(P.parse(s), g) and P.parse(s).dtype == np.uint8
        assert np.array_equal(P.parse(s.replace(".", "0"), size=n), g)
    strings = P.format_many(puzzles)
    assert np.array_equal(P.parse_many(strings), puzzles)
    assert np.array_equal(P.parse_many([f"  {s}\n" for s in strings]), puzzles)  # surrounding whitespace


def test_box_shapes():
    assert [P.box_shape(n) for n in (4, 6, 9)] == [(2, 2), (2, 3), (3, 3)]
    with pytest.raises(PuzzleError, match="unsupported grid size 5"):
        P.box_shape(5)


def test_wrong_length_is_named():
    with pytest.raises(PuzzleError, match=r"data.csv, row 7: wrong length 80, expected 16, 36 or 81"):
        P.parse("." * 80, source="data.csv", row=7)
    with pytest.raises(PuzzleError, match=r"wrong length 16, expected 81 .* 9x9"):
        P.parse("." * 16, size=9)


def test_illegal_character_says_which_and_where():
    with pytest.raises(PuzzleError, match=r"q.txt, row 3: illegal character 'x' at index 5 \(grid row 2, column 2\)"):
        P.parse("1234.x" + "." * 10, source="q.txt", row=3)
    with pytest.raises(PuzzleError, match=r"illegal character '5' .* digits 1-4"):
        P.parse("5" + "." * 15)
    with pytest.raises(PuzzleError, match="expected a string"):
        P.parse(None)


@pytest.mark.parametrize("text, unit", [
    ("1..1" + "." * 12, "grid row 1"),
    ("1..." "...." "1..." "....", "column 1"),
    ("1..." ".1.." "...." "....", r"box 1 \(rows 1-2, columns 1-2\)"),
    ("." * 60 + "9" + "." * 19 + "9", r"box 9 \(rows 7-9, columns 7-9\)"),
])
def test_contradicting_givens_name_digit_and_unit(text, unit):
    digit = text.replace(".", "")[0]
    with pytest.raises(PuzzleError, match=rf"src, row 2: digit {digit} appears 2 times in {unit}"):
        P.parse(text, source="src", row=2)


def test_parse_many_names_the_bad_row():
    good = "1234341221434321"
    with pytest.raises(PuzzleError, match=r"file.csv, row 12: digit 1 appears 2 times"):
        P.parse_many([good, "11" + "." * 14], source="file.csv", row_offset=11)


def test_bad_arrays_are_puzzle_errors():
    with pytest.raises(PuzzleError, match="shape"):
        P.solve(np.zeros((5, 5), np.uint8))
    with pytest.raises(PuzzleError, match="values must be 0"):
        P.solve(np.full((4, 4), 7))
    with pytest.raises(PuzzleError, match="batch shape"):
        P.rate_many(np.zeros((3, 10), np.uint8), progress=False)
    assert issubclass(PuzzleError, ValueError)


@FAST
@given(st.one_of(st.text(), st.text(alphabet=".0123456789x \n", min_size=14, max_size=83),
                 st.sampled_from([16, 36, 81]).flatmap(lambda k: st.text(alphabet=".0123456789", min_size=k, max_size=k))))
def test_fuzzed_strings_parse_or_raise_puzzle_error(text):
    try:
        g = P.parse(text)
    except PuzzleError as e:
        assert str(e).startswith("<string>")
        return
    assert g.dtype == np.uint8 and g.shape[0] in (4, 6, 9)
    P.check(g)


# --- solving -------------------------------------------------------------------------------------

@needs_bench
def test_solver_reproduces_every_benchmark_answer(bench):
    grids = P.parse_many(list(bench.question))
    sols, nsol, guesses = P.solve_many(grids, max_solutions=1)
    assert (nsol == 1).all()
    assert P.format_many(sols) == list(bench.answer)
    sub = grids[::50]  # uniqueness on a sample (count-to-2 costs about twice as much)
    assert (P.solve_many(sub)[1] == 1).all()


def test_solve_known_puzzle():
    s = P.solve(PUZZLE17)
    assert s.n_solutions == 1 and P.format(s.grid) == ANSWER17 and s.guesses >= 0


def test_removing_a_clue_of_a_minimal_puzzle_gives_two_solutions():
    g = P.parse(PUZZLE17)  # 17-clue puzzles are minimal
    for cell in np.flatnonzero(g.reshape(-1))[:5]:
        h = g.copy().reshape(-1)
        h[cell] = 0
        s = P.solve(h.reshape(9, 9))
        assert s.n_solutions == 2 and is_valid_solution(s.grid)
        assert P.solve(h.reshape(9, 9), max_solutions=1).n_solutions == 1


def test_contradiction_free_but_unsolvable_has_no_solution():
    g = P.parse(PUZZLE17).reshape(-1)
    answer = P.parse(ANSWER17).reshape(-1)
    peers = P._tables(9)[0]
    found = 0
    for cell in np.flatnonzero(g == 0):
        for d in range(1, 10):
            if d != answer[cell] and d not in g[peers[cell]]:
                h = g.copy()
                h[cell] = d
                P.check(h)  # no two givens contradict each other...
                s = P.solve(h.reshape(9, 9))  # ...but the unique solution has another digit here
                assert s.n_solutions == 0 and s.grid is None
                found += 1
                break
        if found >= 5:
            break
    assert found == 5


def test_solve_accepts_each_size_and_complete_grids(generated):
    for n in (4, 6, 9):
        puzzles, answers = generated[n]
        sols, nsol, guesses = P.solve_many(puzzles)
        assert (nsol == 1).all() and np.array_equal(sols, answers)
        s = P.solve(answers[0])
        assert s.n_solutions == 1 and s.guesses == 0 and np.array_equal(s.grid, answers[0])
    assert P.solve(np.zeros((4, 4), np.uint8)).n_solutions == 2


# --- ratings ---------------------------------------------------------------------------------------

def test_rating_of_one_blank_and_of_a_full_grid():
    g = P.parse(ANSWER17)
    assert P.rate(g) == P.Rating(0, 0, 0)
    g[4, 4] = 0
    assert P.rate(g) == P.Rating(0, 0, 1)


def test_deduction_depth_counts_rounds():
    g = P.parse(GRID4)
    g[0, :2] = 0  # two naked singles at once: still one round
    assert P.rate(g).deduction_depth == 1
    r = P.rate(PUZZLE17)
    assert r.deduction_depth == NEEDS_GUESS and r.guesses_full >= r.guesses > 0


@needs_bench
def test_rating_sanity_on_benchmark_sets(bench):
    sample = bench.groupby("source").head(300)
    r = P.rate_many(list(sample.question), progress=False)
    g, gf, dd = r["guesses"], r["guesses_full"], r["deduction_depth"]
    assert (gf >= g).all() and (r["n_solutions"] == 1).all()
    assert ((dd < NEEDS_GUESS) <= (gf == 0)).all()  # singles alone solve it -> no guess at all
    assert (dd[gf > 0] == NEEDS_GUESS).all()
    is17 = (sample.source == "puzzles2_17_clue").to_numpy()
    hardest = sample.source.str.startswith("puzzles5").to_numpy()
    assert np.median(g[is17]) <= 2 and (g[is17] == 0).mean() > 0.3  # 17-clue: mostly 0 or small
    assert np.median(g[hardest]) > 5 * max(1, np.median(g[is17]))
    assert np.corrcoef(gf, sample.rating)[0, 1] > 0  # same idea as tdoku's rating, not the same numbers


# --- symmetries ----------------------------------------------------------------------------------

def units_map_to_units(n, cell_perm):
    units = {frozenset(u) for u in P._tables(n)[1].tolist()}
    return all(frozenset(cell_perm[list(u)].tolist()) in units for u in units)


@FAST
@given(n=st.sampled_from([4, 6, 9]), seed=st.integers(0, 2**32 - 1), k=st.integers(0, 39))
def test_augmentation_preserves_validity_and_solutions(generated, n, seed, k):
    puzzle, answer = generated[n][0][k], generated[n][1][k]
    rng = np.random.default_rng(seed)
    cell, digit = P.random_symmetry(n, rng)
    assert sorted(cell) == list(range(n * n)) and digit[0] == 0 and sorted(digit[1:]) == list(range(1, n + 1))
    assert units_map_to_units(n, cell)
    p2, a2 = apply_symmetry(puzzle, cell, digit), apply_symmetry(answer, cell, digit)
    assert is_valid_solution(a2)
    given_cells = p2 > 0
    assert np.array_equal(p2[given_cells], a2[given_cells]) and given_cells.sum() == (puzzle > 0).sum()
    s = P.solve(p2)
    assert s.n_solutions == 1 and np.array_equal(s.grid, a2)


def test_transpose_only_for_square_boxes():
    rng = np.random.default_rng(0)
    for n in (4, 6, 9):
        transposed = 0
        for _ in range(200):
            cell = P.random_symmetry(n, rng)[0].reshape(n, n)
            rows_stay_rows = all(len({c // n for c in cell[i]}) == 1 for i in range(n))
            transposed += not rows_stay_rows
        assert (transposed > 0) == (n != 6)



# --- canonical form ------------------------------------------------------------------------------

def full_group(n):
    r, c = P.box_shape(n)

    def lines(g):
        for blocks in itertools.permutations(range(n // g)):
            for inner in itertools.product(*[list(itertools.permutations(range(g)))] * (n // g)):
                yield [b * g + inner[i][x] for i, b in enumerate(blocks) for x in range(g)]
    for rows in lines(r):
        for cols in lines(c):
            cell = np.array(rows)[:, None] * n + np.array(cols)[None, :]
            yield cell.reshape(-1)
            if r == c:
                yield cell.T.reshape(-1)


def brute_canonical(grid, group):
    n = grid.shape[0]
    best = None
    for cell in group:
        labels, s = {}, []
        for v in grid.reshape(-1)[cell]:
            s.append(n + 1 if v == 0 else labels.setdefault(v, len(labels) + 1))
        best = s if best is None or s < best else best
    return "".join("." if v == n + 1 else str(v) for v in best)


@pytest.mark.parametrize("n", [4, 6])
def test_canonical_matches_brute_force_on_small_grids(generated, n):
    group = list(full_group(n))
    assert len(group) == {4: 128, 6: 3456}[n]
    puzzles, answers = generated[n]
    rng = np.random.default_rng(n)
    partial = [np.where(rng.random((n, n)) < 0.5, a, 0) for a in answers[:10]]
    grids = list(puzzles[:15]) + list(answers[:5]) + partial
    assert P.canonical_many(grids, progress=False) == [brute_canonical(g, group) for g in grids]


@needs_bench
def test_canonical_is_invariant_under_random_transforms(bench, generated):
    rng = np.random.default_rng(0)
    grids = [P.parse(q) for q in bench.groupby("source").sample(30, random_state=0).question]
    grids += [g for n in (4, 6, 9) for g in generated[n][0][:10]]
    grids += [generated[9][1][0]]  # a complete grid: the slowest case
    for g in grids:
        form = P.canonical(g)
        assert len(form) == g.size and P.canonical(P.parse(form)) == form
        for _ in range(5):
            cell, digit = P.random_symmetry(g.shape[0], rng)
            assert P.canonical(apply_symmetry(g, cell, digit)) == form


@needs_bench
def test_different_puzzles_have_different_canonical_forms(bench):
    questions = list(bench[bench.source != "puzzles3_magictour_top1465"].question.iloc[::200])
    forms = P.canonical_many(questions, progress=False)
    assert len(set(forms)) == len(forms)
    g = P.parse(questions[0])
    answer = P.solve(g).grid
    cell = np.flatnonzero(g.reshape(-1) == 0)[0]
    h = g.reshape(-1).copy()
    h[cell] = answer.reshape(-1)[cell]  # one more clue: a different puzzle
    assert P.canonical(h.reshape(9, 9)) != forms[0]


# --- generation ----------------------------------------------------------------------------------

def is_minimal(puzzle):
    g = puzzle.reshape(-1)
    clues = np.flatnonzero(g)
    reduced = np.repeat(g[None], len(clues), axis=0)
    reduced[np.arange(len(clues)), clues] = 0
    return bool((P.solve_many(reduced)[1] == 2).all())


@pytest.mark.parametrize("n", [4, 6, 9])
def test_generated_puzzles_are_unique_and_minimal(generated, n):
    puzzles, answers = generated[n]
    assert puzzles.shape == answers.shape == (40, n, n) and puzzles.dtype == np.uint8
    sols, nsol, _ = P.solve_many(puzzles)
    assert (nsol == 1).all() and np.array_equal(sols, answers)
    assert all(is_valid_solution(a) for a in answers)
    assert all(is_minimal(p) for p in puzzles[:20])
    assert len(set(P.format_many(puzzles))) == 40


def test_generation_is_reproducible_from_the_seed_whatever_the_workers():
    a = P.generate(9, 12, seed=5, workers=1, progress=False)
    b = P.generate(9, 12, seed=5, workers=2, progress=False)
    c = P.generate(9, 12, seed=6, progress=False)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert np.array_equal(P.generate(9, 5, seed=5, progress=False)[0], a[0][:5])  # prefix-stable


@pytest.mark.parametrize("n, min_clues", [(4, 8), (6, 14), (9, 35)])
@pytest.mark.parametrize("hard_fraction", [0.0, 0.5])
def test_min_clues_stops_removal(n, min_clues, hard_fraction):
    puzzles, answers = P.generate(n, 30, min_clues=min_clues, hard_fraction=hard_fraction, seed=1, progress=False)
    clues = (puzzles > 0).sum(axis=(1, 2))
    assert (clues >= min_clues).all() and (clues == min_clues).mean() > 0.5
    sols, nsol, _ = P.solve_many(puzzles)
    assert (nsol == 1).all() and np.array_equal(sols, answers)


@pytest.mark.parametrize("n", [6, 9])
def test_hard_fraction_makes_harder_unique_puzzles(n):
    easy, _ = P.generate(n, 30, seed=2, progress=False)
    hard, answers = P.generate(n, 30, hard_fraction=1.0, seed=2, progress=False)
    r_easy, r_hard = P.rate_many(easy, progress=False), P.rate_many(hard, progress=False)
    assert (r_hard["n_solutions"] == 1).all() and np.array_equal(P.solve_many(hard)[0], answers)
    key = "guesses_full" if n == 9 else "deduction_depth"
    assert r_hard[key].mean() > r_easy[key].mean()
    assert all(is_minimal(p) for p in hard[:5])


def test_generate_rejects_bad_arguments():
    with pytest.raises(PuzzleError, match="unsupported grid size 7"):
        P.generate(7, 3, progress=False)
    with pytest.raises(PuzzleError, match="hard_fraction"):
        P.generate(4, 3, hard_fraction=2.0, progress=False)
    assert P.generate(4, 0, progress=False)[0].shape == (0, 4, 4)
