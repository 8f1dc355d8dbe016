"""Tests for recursia.tasks.maze: parsing, path checks, the official labels, readers, augmentation, generator."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from conftest import need_data
from recursia.errors import ConfigError, DataError, PuzzleError
from recursia.tasks import maze as M
from recursia.tasks.grids import inverse_dihedral


def field(start: tuple[int, int], goal: tuple[int, int], walls: tuple[tuple[int, int], ...] = ()) -> np.ndarray:
    """An all-open maze with the given S, G and walls: small cases whose shortest paths are known by hand."""
    g = np.full((M.SIZE, M.SIZE), M.OPEN, dtype=np.uint8)
    for r, c in walls:
        g[r, c] = M.WALL
    g[start], g[goal] = M.START, M.GOAL
    return g.reshape(-1)


def marked(question: np.ndarray, cells: list[tuple[int, int]]) -> np.ndarray:
    """`question` with the given (row, column) cells marked as path."""
    a = question.copy().reshape(M.SIZE, M.SIZE)
    for r, c in cells:
        a[r, c] = M.PATH
    return a.reshape(-1)


@pytest.fixture(scope="module")
def generated() -> M.MazeRecords:
    """Mazes like the official ones, from our own generator, so that no data files are needed."""
    return M.generate(6, seed=11)


@pytest.fixture(scope="module")
def official() -> M.MazeRecords:
    return M.read_csv(need_data("maze-30x30-hard-1k", "train.csv"))


# ---------------------------------------------------------------------------------------------------- parsing

def test_parse_forms_and_round_trip(generated) -> None:
    q, a = generated.questions[0], generated.answers[0]
    lines = M.format_maze(q).split("\n")
    assert len(lines) == 30 and all(len(line) == 30 for line in lines)
    one = M.format_maze(q, one_line=True)
    assert one == "".join(lines)
    for text in (one, one + "\r\n", "\n".join(lines), "\r\n".join(lines) + "\r\n", "\n".join(lines) + "\n  \n\n"):
        assert np.array_equal(M.parse_maze(text), q)
    assert np.array_equal(M.parse_maze(M.format_maze(a), allow_path=True), a)
    assert M.format_maze(q, path=M.bfs_path(q)) == M.format_maze(a)
    assert M.format_maze(q, path=a == M.PATH) == M.format_maze(a)
    # spaces are cells: an all-open last row and leading/trailing open cells survive
    open_edges = field((1, 1), (2, 5))
    text = M.format_maze(open_edges)
    assert text.startswith(" " * 30 + "\n") and text.endswith("\n" + " " * 30)
    assert np.array_equal(M.parse_maze(text + "\n"), open_edges)
    assert np.array_equal(M.parse_maze(M.format_maze(open_edges, one_line=True)), open_edges)


def test_parse_errors_name_size_position_and_markers(generated) -> None:
    lines = M.format_maze(generated.questions[0]).split("\n")
    with pytest.raises(PuzzleError, match=r"^maze has 29 rows, expected 30$"):
        M.parse_maze("\n".join(lines[:29]))
    with pytest.raises(PuzzleError, match=r"^row 4 has 31 characters, expected 30$"):
        M.parse_maze("\n".join(lines[:3] + [lines[3] + "#"] + lines[4:]))
    with pytest.raises(PuzzleError, match=r"^maze has 899 cells, expected 900$"):
        M.parse_maze("".join(lines)[:899])
    bad = [list(line) for line in lines]
    bad[2][6] = "x"
    with pytest.raises(PuzzleError, match=r"invalid character 'x' at row 3, column 7 \(allowed: '#' wall"):
        M.parse_maze("\n".join("".join(row) for row in bad))
    with pytest.raises(PuzzleError, match=r"invalid character '\.' at row 3, column 5"):
        M.parse_maze("".join(lines)[:64] + "." + "".join(lines)[65:])
    two_starts = field((0, 0), (5, 5)).copy()
    two_starts[7] = M.START
    with pytest.raises(PuzzleError, match=r"^maze has 2 start cells \(S\), expected exactly 1$"):
        M.parse_maze(M.format_maze(two_starts))
    no_goal = M.format_maze(field((0, 0), (5, 5))).replace("G", " ")
    with pytest.raises(PuzzleError, match=r"^maze has 0 goal cells \(G\), expected exactly 1$"):
        M.parse_maze(no_goal)
    answer = M.format_maze(generated.answers[0])
    with pytest.raises(PuzzleError, match=r"question has \d+ path cells \('o'\), first at row \d+, column \d+"):
        M.parse_maze(answer)
    assert (M.parse_maze(answer, allow_path=True) == M.PATH).sum() == generated.ratings[0] - 2


def test_maze_problems_and_unreachable_goal() -> None:
    q = field((0, 0), (5, 5))
    assert M.maze_problems(q) == [] and M.shortest_path_length(q) == 11
    boxed = field((0, 0), (5, 5), walls=((4, 5), (6, 5), (5, 4), (5, 6)))
    assert M.maze_problems(boxed) == ["G cannot be reached from S"]
    assert M.shortest_path_length(boxed) == -1
    assert M.check_path(boxed, boxed) == ["question: G cannot be reached from S"]
    with pytest.raises(PuzzleError, match="G cannot be reached from S"):
        M.bfs_label(boxed)
    two = q.copy()
    two[[100, 200]] = M.GOAL
    assert M.maze_problems(two) == ["maze has 3 goal cells (G), expected exactly 1"]
    with_path = marked(q, [(0, 1)])
    assert M.maze_problems(with_path) == ["question has 1 path cell ('o'), first at row 1, column 2"]
    with pytest.raises(PuzzleError, match="question has 1 path cell"):
        M.bfs_label(with_path)  # marks would otherwise act as walls
    assert M.shortest_path_length_batch(np.stack([q, boxed, two])).tolist() == [11, -1, -1]


# ---------------------------------------------------------------------------------------------------- path checks

def test_check_path_on_an_open_field() -> None:
    q = field((0, 0), (3, 3))  # shortest path: 7 cells, many of them
    right_down = marked(q, [(0, 1), (0, 2), (0, 3), (1, 3), (2, 3)])
    down_right = marked(q, [(1, 0), (2, 0), (3, 0), (3, 1), (3, 2)])
    official = M.bfs_label(q)
    assert not np.array_equal(right_down, official) or not np.array_equal(down_right, official)
    cases = {
        "official": (official, []),
        "right then down": (right_down, []),
        "down then right": (down_right, []),
        "broken": (marked(q, [(0, 1), (0, 2), (1, 3), (2, 3)]),
                   ["path does not connect S to G", "path has 6 cells but the shortest has 7"]),
        "detour": (marked(q, [(0, 1), (0, 2), (0, 3), (0, 4), (1, 4), (2, 4), (3, 4)]),
                   ["path has 9 cells but the shortest has 7"]),
        "stray": (marked(q, [(0, 1), (0, 2), (0, 3), (1, 3), (2, 3), (10, 10)]),
                  ["1 path cell is not connected to the path from S to G, first at row 11, column 11",
                   "path has 8 cells but the shortest has 7"]),
        "moved cell": (marked(q, [(0, 1), (0, 3), (1, 3), (2, 3), (10, 10)]), ["path does not connect S to G"]),
        "over S": (marked(right_down, [(0, 0)]),
                   ["answer marks S at row 1, column 1 as a path cell; S and G keep their letters"]),
    }
    for name, (answer, reasons) in cases.items():
        assert M.check_path(q, answer) == reasons, name
    batch = M.valid_shortest_path_batch(np.stack([q] * len(cases)), np.stack([a for a, _ in cases.values()]))
    assert batch.tolist() == [not reasons for _, reasons in cases.values()]


def test_path_through_a_wall_and_cells_off_the_path() -> None:
    q = field((0, 0), (0, 4), walls=((0, 2),))  # the wall forces a detour: 7 cells
    assert M.shortest_path_length(q) == 7
    straight = marked(q, [(0, 1), (0, 2), (0, 3)])
    reasons = M.check_path(q, straight)
    assert reasons[0] == "path goes through 1 wall, first at row 1, column 3"
    assert "path does not connect S to G" in reasons
    around = marked(q, [(0, 1), (1, 1), (1, 2), (1, 3), (0, 3)])
    assert M.check_path(q, around) == []
    repainted = around.copy()
    repainted[899] = M.WALL  # a wrong copy of a cell that is not on the path
    assert M.check_path(q, repainted) == [
        "answer differs from the question at 1 cell that is not marked 'o', first at row 30, column 30 "
        "(question ' ', answer '#')"]
    # the batch metric is about the path only, so it accepts the repainted answer but not the wall crossing
    assert M.valid_shortest_path_batch(np.stack([q] * 3), np.stack([straight, around, repainted])).tolist() == [
        False, True, True]


def test_alternative_shortest_paths_and_broken_paths_in_random_mazes(generated) -> None:
    qs, ans = generated.questions, generated.answers
    other_order = M._neighbour_table("URLD")
    alternatives = []
    for q in qs:
        alt = q.copy()
        alt[M._path_for(q, other_order)[1:-1]] = M.PATH
        alternatives.append(alt)
    alternatives = np.stack(alternatives)
    differ = ~(alternatives == ans).all(axis=1)
    assert differ.sum() >= 2  # several shortest paths are the rule in these mazes
    assert M.valid_shortest_path_batch(qs, alternatives).all()
    assert all(M.check_path(q, a) == [] for q, a in zip(qs[differ], alternatives[differ]))
    rng = np.random.default_rng(0)
    broken, stray = ans.copy(), ans.copy()
    for i in range(len(ans)):
        broken[i, rng.choice(np.nonzero(ans[i] == M.PATH)[0])] = M.OPEN
        stray[i, rng.choice(np.nonzero(ans[i] == M.OPEN)[0])] = M.PATH
    assert not M.valid_shortest_path_batch(qs, broken).any()
    assert not M.valid_shortest_path_batch(qs, stray).any()
    assert not M.valid_shortest_path_batch(qs, qs).any()  # no path at all
    assert "path does not connect S to G" in M.check_path(qs[0], broken[0])
    noise = rng.integers(0, M.VOCAB_SIZE, size=qs.shape).astype(np.uint8)
    assert not M.valid_shortest_path_batch(qs, noise).any()


# ---------------------------------------------------------------------------------------------------- official data

def test_bfs_rule_reproduces_every_official_answer(official) -> None:
    assert len(official) == 1000 and official.rejected == []
    assert np.array_equal(M.bfs_label_batch(official.questions), official.answers)
    lengths = M.shortest_path_length_batch(official.questions)
    assert np.array_equal(lengths, official.ratings.astype(np.int64))
    assert np.array_equal((official.answers == M.PATH).sum(axis=1) + 2, lengths)
    assert lengths.min() >= 110
    walls = (official.questions == M.WALL).sum(axis=1)
    assert walls.min() >= 249 and walls.max() <= 405
    assert M.valid_shortest_path_batch(official.questions, official.answers).all()
    # another neighbour order gives other shortest paths: valid, though not the labels
    other_order = M._neighbour_table("RULD")
    alt = official.questions[:100].copy()
    for row in alt:
        row[M._path_for(row.copy(), other_order)[1:-1]] = M.PATH
    assert not (alt == official.answers[:100]).all(axis=1).all()
    assert M.valid_shortest_path_batch(official.questions[:100], alt).all()


# ---------------------------------------------------------------------------------------------------- readers

def write_csv(path: Path, rows: list[list[str]], header: tuple[str, ...] = M.CSV_COLUMNS) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_read_csv_reports_bad_rows_by_line(tmp_path, generated) -> None:
    one = lambda g: M.format_maze(g, one_line=True)  # noqa: E731
    q0, a0 = generated.questions[0], generated.answers[0]
    broken = a0.copy()
    broken[np.nonzero(a0 == M.PATH)[0][5]] = M.OPEN
    edges = field((1, 1), (2, 5))  # starts and ends with open cells: fields must not be stripped
    detour = marked(edges, [(1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (2, 6)])  # connected, not shortest
    two_starts = q0.copy()
    two_starts[np.nonzero(q0 == M.OPEN)[0][0]] = M.START
    rows = [["a", one(q0), one(a0), "113"],
            ["b", one(q0), one(broken), ""],
            ["c", one(q0)[:899], one(a0), ""],
            ["d", one(edges), one(detour), "8"],
            ["e", one(two_starts), one(a0), ""],
            ["f", one(q0), "#x" + one(a0)[2:], ""]]
    path = write_csv(tmp_path / "mazes.csv", rows)
    with pytest.raises(DataError) as info:
        M.read_csv(path)
    msg = str(info.value)
    assert "4 invalid mazes" in msg
    assert f"{path}:3: path does not connect S to G" in msg
    assert f"{path}:4: question: maze has 899 cells, expected 900" in msg
    assert f"{path}:6: question: maze has 2 start cells (S), expected exactly 1" in msg
    assert f"{path}:7: answer: maze has an invalid character 'x' at row 1, column 2" in msg
    assert f"{path}:2:" not in msg and f"{path}:5:" not in msg
    assert "--skip-invalid" in msg
    recs = M.read_csv(path, skip_invalid=True)
    assert recs.line_numbers.tolist() == [2, 5] and recs.sources == ["a", "d"]
    assert [line for line, _ in recs.rejected] == [3, 4, 6, 7]
    assert np.array_equal(recs.questions, np.stack([q0, edges]))
    assert np.array_equal(recs.answers, np.stack([a0, detour]))
    assert recs.ratings[0] == 113 and recs.ratings[1] == 8


def test_read_csv_header_missing_empty_and_many_errors(tmp_path, generated) -> None:
    with pytest.raises(DataError, match="expected the columns source,question,answer,rating"):
        M.read_csv(write_csv(tmp_path / "h.csv", [], header=("question", "answer")))
    with pytest.raises(DataError, match="maze file not found: .*nope.csv"):
        M.read_csv(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty.csv: file is empty"):
        M.read_csv(tmp_path / "empty.csv")
    a = M.format_maze(generated.answers[0], one_line=True)
    rows = [["", "x" * 900, a, ""] for _ in range(25)]
    with pytest.raises(DataError, match=r"25 invalid mazes(.|\n)*\.\.\. and 5 more"):
        M.read_csv(write_csv(tmp_path / "many.csv", rows))


def test_read_mazes_text_file(tmp_path, generated) -> None:
    qs = generated.questions
    walled = field((5, 5), (9, 9), walls=((0, 0), (0, 1)))  # its first row starts with '#': not a comment
    content = ("\r\n".join(M.format_maze(walled).split("\n")) + "\r\n\r\n"
               + M.format_maze(qs[0], one_line=True) + "\r\n"
               + M.format_maze(qs[1], one_line=True) + "\r\n\r\n\r\n"
               + M.format_maze(qs[2]) + "\n\n")
    path = tmp_path / "mazes.txt"
    path.write_bytes(content.encode())
    found = M.read_mazes(path)
    assert found.dtype == np.uint8 and np.array_equal(found, np.stack([walled, qs[0], qs[1], qs[2]]))
    short = "\n".join(M.format_maze(qs[3]).split("\n")[:29])
    boxed = field((0, 0), (5, 5), walls=((4, 5), (6, 5), (5, 4), (5, 6)))
    path.write_bytes((content + short + "\n\n" + M.format_maze(boxed, one_line=True) + "\n").encode())
    with pytest.raises(DataError) as info:
        M.read_mazes(path)
    msg = str(info.value)
    assert "2 invalid mazes" in msg and "--skip-invalid" not in msg
    assert f"{path}:67: maze has 29 rows, expected 30" in msg  # mazes are named by their first line
    assert f"{path}:97: G cannot be reached from S" in msg
    path.write_text("\n \n")
    with pytest.raises(DataError, match="no mazes"):
        M.read_mazes(path)


# ------------------------------------------------------------------------------------------------- encoding, symmetry

def test_encode_decode(generated) -> None:
    qs, ans = generated.questions, generated.answers
    inputs, labels = M.encode(qs, ans)
    assert inputs.dtype == labels.dtype == np.uint8
    assert np.array_equal(inputs, qs) and np.array_equal(labels, ans) and inputs is not qs
    assert M.encode(qs)[1] is None
    assert M.decode(np.array([0, 1, 5, 6, 200, -3])).tolist() == [0, 1, 5, 5, 5, 0]
    assert (M.SIZE, M.SEQ_LEN, M.VOCAB_SIZE, M.CHARS) == (30, 900, 6, "# SGo")
    with pytest.raises(ValueError, match=r"shape \(N, 900\)"):
        M.encode(qs[:, :800])


def test_dihedral_augmentation_keeps_shortest_paths_and_inverts(generated) -> None:
    qs, ans = generated.questions, generated.answers
    not_official = 0
    for t in range(8):
        q2, a2 = M.augment_dihedral(qs, ans, t)
        assert M.valid_shortest_path_batch(q2, a2).all()
        assert M.check_path(q2[0], a2[0]) == []
        for g, g2 in ((qs, q2), (ans, a2)):
            assert np.array_equal(inverse_dihedral(g2.reshape(-1, 30, 30), t).reshape(-1, 900), g)
        not_official += int((~(M.bfs_label_batch(q2) == a2).all(axis=1)).sum())
    assert not_official > 0  # the tie-break is not symmetric, as the docstring warns
    ids = np.arange(len(qs)) % 8
    q3, a3 = M.augment_dihedral(qs, ans, ids)
    for i, t in enumerate(ids):
        assert np.array_equal(q3[i], M.augment_dihedral(qs[i:i + 1], None, int(t))[0][0])
    assert M.valid_shortest_path_batch(q3, a3).all()
    with pytest.raises(ValueError, match="0..7"):
        M.augment_dihedral(qs, ans, 8)


# ---------------------------------------------------------------------------------------------------- generator

def test_generate_matches_the_official_rules(generated) -> None:
    qs, ans = generated.questions, generated.answers
    assert qs.shape == ans.shape == (6, 900)
    assert (generated.ratings >= 110).all()
    walls = (qs == M.WALL).sum(axis=1)
    assert ((walls >= 249) & (walls <= 405)).all()
    assert np.array_equal(ans, M.bfs_label_batch(qs))
    assert np.array_equal(generated.ratings, M.shortest_path_length_batch(qs))
    assert all(M.maze_problems(q) == [] for q in qs)
    assert 0 < generated.stats["acceptance_rate"] < 0.01
    again = M.generate(6, seed=11)
    assert np.array_equal(again.questions, qs) and np.array_equal(again.answers, ans)
    assert not np.array_equal(M.generate(6, seed=11, goal="far").questions, qs)  # "matched" resamples
    far6 = M.generate(6, seed=11, goal="far")
    assert np.array_equal(M.generate(3, seed=11, goal="far").questions, far6.questions[:3])  # prefix under "far"
    assert not np.array_equal(M.generate(6, seed=12).questions, qs)


def test_generate_small_settings_no_duplicates_and_goal_rules() -> None:
    # few far (S, G) pairs exist on an empty board, so repeats are drawn and must be dropped
    recs = M.generate(300, seed=1, min_path=52, wall_range=(0, 0))
    assert len({q.tobytes() for q in recs.questions}) == 300
    assert (recs.ratings >= 52).all() and ((recs.questions == M.WALL).sum(axis=1) == 0).all()
    assert M.valid_shortest_path_batch(recs.questions, recs.answers).all()
    far = M.generate(40, seed=2, min_path=40, wall_range=(200, 300))
    opened = M.generate(40, seed=2, min_path=40, wall_range=(200, 300), goal="open")
    for recs in (far, opened):
        walls = (recs.questions == M.WALL).sum(axis=1)
        assert (recs.ratings >= 40).all() and ((walls >= 200) & (walls <= 300)).all()
        assert np.array_equal(recs.answers, M.bfs_label_batch(recs.questions))
    # the "open" rule weights mazes by their number of far cells, so it accepts less often
    assert opened.stats["acceptance_rate"] < far.stats["acceptance_rate"]


def test_generate_rejects_bad_settings(monkeypatch) -> None:
    with pytest.raises(ConfigError, match="goal must be 'matched', 'far' or 'open'"):
        M.generate(1, seed=0, goal="near")
    with pytest.raises(ConfigError, match="min_path must be 2..900"):
        M.generate(1, seed=0, min_path=1)
    with pytest.raises(ConfigError, match="wall_range must be"):
        M.generate(1, seed=0, wall_range=(10, 5))
    with pytest.raises(ConfigError, match="cannot be reached with at least 850 walls"):
        M.generate(1, seed=0, wall_range=(850, 860))
    monkeypatch.setattr(M, "_GIVE_UP_AFTER", 2048)
    with pytest.raises(ConfigError, match="only 0 of 1 mazes found in 2048 draws"):
        M.generate(1, seed=0, min_path=300, wall_range=(0, 10))
