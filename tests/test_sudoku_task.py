"""Tests for recursia.tasks.sudoku: parsing, validation, readers, encoding, symmetry, solver and generator."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from recursia.errors import ConfigError, DataError, PuzzleError
from recursia.tasks import sudoku as S

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path | None:
    """The shared data folder: $RECURSIA_DATA_DIR, else ../shared/data next to the repository, else None."""
    env = os.environ.get("RECURSIA_DATA_DIR")
    candidate = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    return candidate if (candidate / "sudoku-extreme-1k").is_dir() else None


def require_data() -> Path:
    found = data_dir()
    if found is None:
        pytest.skip("real Sudoku data not found (set RECURSIA_DATA_DIR or provide ../shared/data)")
    return found


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    """Puzzles with known unique answers, made by our own generator so no data files are needed."""
    recs = S.generate(12, seed=123, blanks=50)
    return recs.questions, recs.answers


# ---------------------------------------------------------------------------------------------------- parsing

def test_parse_grid_accepts_blanks_and_whitespace() -> None:
    text = "1" + "." * 40 + "0" * 39 + "9"
    g = S.parse_grid("  " + text[:40] + "\n " + text[40:] + "\r\n")
    assert g.dtype == np.uint8 and g.shape == (81,)
    assert g[0] == 1 and g[80] == 9 and int((g == 0).sum()) == 79
    assert S.format_grid(g) == "1" + "." * 79 + "9"


def test_parse_grid_reports_length() -> None:
    with pytest.raises(PuzzleError, match=r"puzzle has 80 cells, expected 81"):
        S.parse_grid("." * 80)
    with pytest.raises(PuzzleError, match=r"puzzle has 82 cells, expected 81"):
        S.parse_grid("1" * 82)


def test_parse_grid_reports_character_and_position() -> None:
    text = "." * 11 + "x" + "." * 69
    with pytest.raises(PuzzleError, match=r"invalid character 'x' at position 12 \(allowed: digits 1-9"):
        S.parse_grid(text)


def test_format_grid_pretty_round_trip(sample) -> None:
    q = sample[0][0]
    pretty = S.format_grid(q, pretty=True)
    lines = pretty.splitlines()
    assert len(lines) == 11 and lines[3] == lines[7] == "------+-------+------"
    assert all(line.count("|") == 2 for i, line in enumerate(lines) if i not in (3, 7))
    digits_only = "".join(ch for ch in pretty if ch.isdigit() or ch == ".")
    assert np.array_equal(S.parse_grid(digits_only), q)


# ---------------------------------------------------------------------------------------------------- validation

def test_clue_conflicts_names_units(sample) -> None:
    q = sample[0][0].copy()
    assert S.clue_conflicts(q) == []
    g = np.zeros(81, dtype=np.uint8)
    g[18], g[20] = 5, 5  # row 3, columns 1 and 3: same row and same box
    g[80] = 7
    g[8] = 7  # column 9 twice
    found = S.clue_conflicts(g)
    assert "digit 5 appears twice in row 3" in found
    assert "digit 5 appears twice in box 1" in found
    assert "digit 7 appears twice in column 9" in found
    assert len(found) == 3


def test_check_answer_and_validity(sample) -> None:
    q, a = sample[0][0], sample[1][0]
    assert S.is_valid_solution(a) and not S.is_valid_solution(q)
    assert S.check_answer(q, a) == []
    clue = int(np.nonzero(q)[0][0])
    wrong = a.copy()
    other = int(np.nonzero(a[(clue // 9) * 9:(clue // 9) * 9 + 9] != a[clue])[0][0]) + (clue // 9) * 9
    wrong[clue], wrong[other] = wrong[other], wrong[clue]  # swap two cells of the clue's row
    reasons = S.check_answer(q, wrong)
    expected = f"clue at row {clue // 9 + 1}, column {clue % 9 + 1} is {q[clue]} but the answer has {wrong[clue]}"
    assert expected in reasons
    assert any("appears twice in column" in r for r in reasons)
    incomplete = a.copy()
    incomplete[[3, 4]] = 0
    assert "answer is incomplete: 2 blank cells" in S.check_answer(q, incomplete)


def test_batch_validity_matches_single(sample) -> None:
    qs, ans = sample
    broken = ans.copy()
    broken[1, [0, 1]] = broken[1, [1, 0]]
    broken[2, 5] = 0
    expect = np.array([S.is_valid_solution(g) for g in broken])
    assert np.array_equal(S.is_valid_solution_batch(broken), expect)
    assert expect.sum() == len(ans) - 2
    consistent = S.consistent_batch(qs, ans)
    assert consistent.all()
    relabelled = ans.copy()
    relabelled[0] = (ans[0] % 9) + 1  # still a valid grid, but the clues no longer match
    assert S.is_valid_solution_batch(relabelled)[0] and not S.consistent_batch(qs, relabelled)[0]


# ---------------------------------------------------------------------------------------------------- readers

def _write_csv(path: Path, rows: list[str], header: str = "source,question,answer,rating") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_read_csv_good_rows(tmp_path, sample) -> None:
    qs, ans = sample
    rows = [f"src{i},{S.format_grid(q)},{S.format_grid(a)},{i if i % 2 else ''}" for i, (q, a) in
            enumerate(zip(qs[:4], ans[:4]))]
    recs = S.read_csv(_write_csv(tmp_path / "ok.csv", rows))
    assert len(recs) == 4 and recs.rejected == []
    assert np.array_equal(recs.questions, qs[:4]) and np.array_equal(recs.answers, ans[:4])
    assert recs.sources == ["src0", "src1", "src2", "src3"]
    assert np.isnan(recs.ratings[0]) and recs.ratings[1] == 1.0
    assert recs.line_numbers.tolist() == [2, 3, 4, 5]


def test_read_csv_bad_row_reports_line(tmp_path, sample) -> None:
    qs, ans = sample
    bad_answer = ans[1].copy()
    clue = int(np.nonzero(qs[1])[0][0])
    bad_answer[clue] = bad_answer[clue] % 9 + 1
    rows = [f",{S.format_grid(qs[0])},{S.format_grid(ans[0])},",
            f",{S.format_grid(qs[1])},{S.format_grid(bad_answer)},",
            f",{S.format_grid(qs[2])[:80]},{S.format_grid(ans[2])},",
            f",{S.format_grid(qs[3])},{S.format_grid(ans[3])},"]
    path = _write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DataError) as info:
        S.read_csv(path)
    msg = str(info.value)
    assert f"{path}:3: " in msg and "clue at row" in msg
    assert f"{path}:4: question: puzzle has 80 cells, expected 81" in msg
    assert f"{path}:2:" not in msg and f"{path}:5:" not in msg
    assert "skip_invalid" in msg and "--skip-invalid" in msg
    recs = S.read_csv(path, skip_invalid=True)
    assert recs.line_numbers.tolist() == [2, 5]
    assert [line for line, _ in recs.rejected] == [3, 4]
    assert np.array_equal(recs.questions, qs[[0, 3]])


def test_read_csv_header_missing_file_and_many_errors(tmp_path, sample) -> None:
    with pytest.raises(DataError, match="expected the columns source,question,answer,rating"):
        S.read_csv(_write_csv(tmp_path / "h.csv", [], header="question,answer"))
    with pytest.raises(DataError, match="not found: .*nope.csv"):
        S.read_csv(tmp_path / "nope.csv")
    rows = [f",{'x' * 81},{S.format_grid(sample[1][0])}," for _ in range(25)]
    with pytest.raises(DataError, match=r"25 invalid puzzle rows(.|\n)*\.\.\. and 5 more"):
        S.read_csv(_write_csv(tmp_path / "many.csv", rows))
    conflicted = np.zeros(81, dtype=np.uint8)
    conflicted[[0, 1]] = 3
    rows = [f",{S.format_grid(conflicted)},{S.format_grid(sample[1][0])},"]
    with pytest.raises(DataError, match="question has conflicting clues: digit 3 appears twice in row 1"):
        S.read_csv(_write_csv(tmp_path / "conflict.csv", rows))


def test_read_lines_crlf_comments_fields(tmp_path, sample) -> None:
    qs = sample[0]
    zero_blanks = S.format_grid(qs[1]).replace(".", "0")
    content = ("# a comment\r\n\r\n" + S.format_grid(qs[0]) + "\r\n" + zero_blanks + "  17  note\r\n"
               + "   # indented comment\r\n" + S.format_grid(qs[2]) + "\r\n")
    path = tmp_path / "puzzles.txt"
    path.write_bytes(content.encode())
    recs = S.read_lines(path)
    assert recs.answers is None and recs.rejected == []
    assert np.array_equal(recs.questions, qs[:3])
    assert recs.line_numbers.tolist() == [3, 4, 6]
    path.write_bytes((content + "12345\r\n").encode())
    with pytest.raises(DataError, match=r"puzzles.txt:7: puzzle has 5 cells, expected 81"):
        S.read_lines(path)
    recs = S.read_lines(path, skip_invalid=True)
    assert len(recs) == 3 and recs.rejected == [(7, "puzzle has 5 cells, expected 81")]


# ---------------------------------------------------------------------------------------------------- encoding

def test_encode_decode_round_trip(sample) -> None:
    qs, ans = sample
    inputs, labels = S.encode(qs, ans)
    assert inputs.dtype == np.uint8 and inputs.min() >= 1 and inputs.max() < S.VOCAB_SIZE
    assert np.array_equal(inputs == 1, qs == 0) and np.array_equal(labels, ans + 1)
    assert np.array_equal(S.decode(inputs), qs) and np.array_equal(S.decode(labels), ans)
    assert S.encode(qs)[1] is None
    assert S.decode(np.array([0, 1, 2, 10, 13])).tolist() == [0, 0, 1, 9, 9]
    assert S.SEQ_LEN == 81 and S.VOCAB_SIZE == 11


# ---------------------------------------------------------------------------------------------------- symmetry

def _reference_transform(grid: np.ndarray, digit_map, transpose, mapping) -> np.ndarray:
    """Straightforward per-grid version of the transform, to check the vectorised one against."""
    g = grid.reshape(9, 9)
    if transpose:
        g = g.T
    return digit_map[g.flatten()[mapping]]


def test_apply_transforms_matches_reference_and_group_law(sample) -> None:
    qs, ans = sample
    rng = np.random.default_rng(5)
    t = S.random_transforms(rng, len(qs))
    out = S.apply_transforms(qs, t)
    for i in range(len(qs)):
        assert np.array_equal(out[i], _reference_transform(qs[i], t.digit_maps[i], t.transpose[i], t.mappings[i]))
    assert (t.digit_maps[:, 0] == 0).all()
    assert all(sorted(m) == list(range(1, 10)) for m in t.digit_maps[:, 1:].tolist())
    assert all(sorted(m) == list(range(81)) for m in t.mappings.tolist())
    big = S.random_transforms(rng, 4000)
    assert 0.45 < big.transpose.mean() < 0.55
    # rows stay inside bands: the 9 source cells of each output row come from a single source row
    assert (np.ptp(big.mappings.reshape(-1, 9, 9) // 9, axis=2) == 0).all()


def test_augmentation_keeps_puzzles_valid(sample) -> None:
    qs, ans = sample
    rng = np.random.default_rng(0)
    reps = 50
    q = np.repeat(qs, reps, axis=0)
    a = np.repeat(ans, reps, axis=0)
    t = S.random_transforms(rng, len(q))
    q2, a2 = S.apply_transforms(q, t), S.apply_transforms(a, t)
    assert S.consistent_batch(q2, a2).all()
    assert np.array_equal((q2 > 0).sum(axis=1), (q > 0).sum(axis=1))
    assert len({row.tobytes() for row in q2}) > 0.95 * len(q2)
    q1, a1 = S.augment(qs[0], ans[0], rng)
    assert S.check_answer(q1, a1) == [] and not np.array_equal(q1, qs[0])


def test_canonical_form_invariant_and_discriminating(sample) -> None:
    qs, ans = sample
    rng = np.random.default_rng(1)
    full = [S.solve(np.zeros(81, np.uint8), limit=1, rng=np.random.default_rng(s)).solutions[0] for s in (0, 1)]
    grids = np.concatenate([qs[:4], np.stack(full)])
    forms = [S.canonical_form(g) for g in grids]
    assert all(len(f) == 81 for f in forms) and len(set(forms)) == len(forms)
    for _ in range(4):
        moved = S.apply_transforms(grids, S.random_transforms(rng, len(grids)))
        assert [S.canonical_form(g) for g in moved] == forms
        assert np.array_equal(S.symmetry_invariant(moved), S.symmetry_invariant(grids))
    changed = qs[0].copy()
    changed[int(np.nonzero(changed)[0][0])] = 0  # one clue fewer: not equivalent
    assert S.canonical_form(changed) != forms[0]
    # minlex: blanks sort first and digits are relabelled in order of first appearance
    digits = [c - 48 for c in forms[0] if c != 48]
    first_seen = list(dict.fromkeys(digits))
    assert first_seen == list(range(1, len(first_seen) + 1))
    assert forms[0].startswith(b"0000000")  # 31 clues leave room for a long run of blanks in front
    assert forms[4].startswith(b"123456789")


def test_find_equivalent_small(sample) -> None:
    qs, _ = sample
    rng = np.random.default_rng(2)
    refs = qs[:3]
    cands = np.concatenate([S.apply_transforms(refs, S.random_transforms(rng, 3)), qs[3:8]])
    assert S.find_equivalent(cands, refs).tolist() == [0, 1, 2]


# ---------------------------------------------------------------------------------------------------- solver

def test_solver_unique_and_multiple(sample) -> None:
    qs, ans = sample
    for q, a in zip(qs[:5], ans[:5]):
        res = S.solve(q)
        assert res.unique and np.array_equal(res.solutions[0], a)
    hard = S.generate(1, seed=4, blanks=56, method="search")
    q = hard.questions[0].copy()
    assert S.solve(q).unique
    for cell in np.nonzero(q)[0]:  # remove clues until the puzzle stops being unique
        q[cell] = 0
        res = S.solve(q)
        if not res.unique:
            break
    assert len(res.solutions) == 2 and not np.array_equal(*res.solutions)
    assert all(S.check_answer(q, s) == [] for s in res.solutions)
    conflicted = np.zeros(81, dtype=np.uint8)
    conflicted[[0, 1]] = 4
    assert S.solve(conflicted).solutions == []
    assert len(S.solve(np.zeros(81, dtype=np.uint8), limit=3).solutions) == 3


def test_solver_on_heldout_and_17_clue() -> None:
    root = require_data()
    held = S.read_csv(root / "sudoku-extreme-1k" / "heldout-1000.csv")
    for q, a in zip(held.questions[:50], held.answers[:50]):
        res = S.solve(q)
        assert res.unique and np.array_equal(res.solutions[0], a)
    seventeen = S.read_lines(root / "sudoku-collections" / "puzzles2_17_clue").questions[:3]
    for q in seventeen:
        assert int((q > 0).sum()) == 17 and S.solve(q).unique
        fewer = q.copy()
        fewer[int(np.nonzero(q)[0][0])] = 0
        assert len(S.solve(fewer).solutions) == 2


# ---------------------------------------------------------------------------------------------------- generator

def test_deduction_rounds_edge_cases(sample) -> None:
    qs, ans = sample
    one_blank = ans[0].copy()
    one_blank[40] = 0
    conflicted = ans[0].copy()
    conflicted[0] = conflicted[1]
    # no repeated clue, but simultaneous singles clash: a naive round would "complete" it in one step
    clash = S.parse_grid("3278..41..1534..874867.1..91645.3.727382.65415.21.463887945216.6.3918.2.25..37894")
    assert S.clue_conflicts(clash) == [] and S.solve(clash).solutions == []
    rounds = S.deduction_rounds(np.stack([ans[0], one_blank, conflicted, np.zeros(81, np.uint8), clash]))
    assert rounds.tolist() == [0, 1, -1, -1, -1]


def test_generate_singles() -> None:
    recs = S.generate(300, seed=7, blanks=45, min_rounds=5)
    assert recs.questions.shape == (300, 81) and recs.answers.shape == (300, 81)
    assert ((recs.questions == 0).sum(axis=1) == 45).all()
    assert S.consistent_batch(recs.questions, recs.answers).all()
    assert len({q.tobytes() for q in recs.questions}) == 300
    rounds = S.deduction_rounds(recs.questions)
    assert np.array_equal(rounds, recs.ratings.astype(int)) and (rounds >= 5).all()
    for q, a in zip(recs.questions[:10], recs.answers[:10]):
        res = S.solve(q)
        # the solver propagates the same singles, so it must finish these without a guess
        assert res.unique and np.array_equal(res.solutions[0], a) and res.guesses == 0
    again = S.generate(300, seed=7, blanks=45, min_rounds=5)
    assert np.array_equal(again.questions, recs.questions) and np.array_equal(again.answers, recs.answers)
    other = S.generate(300, seed=8, blanks=45, min_rounds=5)
    assert not np.array_equal(other.questions, recs.questions)


def test_generate_rejects_impossible_settings_and_duplicates() -> None:
    with pytest.raises(ConfigError, match="only 0 of 3 puzzles"):
        S.generate(3, seed=0, blanks=0, min_rounds=1)  # a full grid needs 0 rounds
    with pytest.raises(ConfigError, match="blanks must be 0..64"):
        S.generate(3, seed=0, blanks=70)
    rows = np.array([[1] * 81, [2] * 81, [1] * 81, [3] * 81], dtype=np.uint8)
    seen = {rows[3].tobytes()}
    assert S._take_new(seen, rows, 5) == [0, 1]


def test_generate_search() -> None:
    recs = S.generate(2, seed=3, blanks=54, method="search")
    assert ((recs.questions == 0).sum(axis=1) == 54).all()
    for q, a, rating in zip(recs.questions, recs.answers, recs.ratings):
        res = S.solve(q)
        assert res.unique and np.array_equal(res.solutions[0], a) and res.guesses == rating
    assert np.array_equal(S.generate(2, seed=3, blanks=54, method="search").questions, recs.questions)


# ---------------------------------------------------------------------------------------------------- real data

def test_27_collection_puzzles_equivalent_to_training() -> None:
    root = require_data()
    train = S.read_csv(root / "sudoku-extreme-1k" / "train.csv").questions
    names = ["puzzles2_17_clue", "puzzles3_magictour_top1465", "puzzles5_forum_hardest_1905_11+"]
    sets = [S.read_lines(root / "sudoku-collections" / name).questions for name in names]
    hits = S.find_equivalent(np.concatenate(sets), train)
    bounds = np.cumsum([0] + [len(s) for s in sets])
    per_file = [int(((hits >= lo) & (hits < hi)).sum()) for lo, hi in zip(bounds[:-1], bounds[1:])]
    assert per_file == [14, 0, 13]


def test_best_partial_keeps_clues_and_the_most_confident_of_two_conflicting_digits():
    from recursia.tasks.sudoku_partial import best_partial

    question = np.zeros(81, dtype=np.int64)
    question[0] = 5  # a clue in row 1
    answer = np.zeros(81, dtype=np.int64)
    answer[0], answer[1], answer[2], answer[9] = 7, 3, 3, 5  # clue overwritten; 3 twice in row 1; 5 below the clue
    conf = np.zeros(81)
    conf[1], conf[2], conf[9] = 0.4, 0.9, 0.99
    out = best_partial(question, answer, conf)
    assert out[0] == 5 and out[2] == 3 and out[1] == 0  # the more confident 3 stays, the clue is kept
    assert out[9] == 0  # 5 repeats the clue in box 1 and column 1
    assert int((out != 0).sum()) == 2
