"""ARC tasks: readers and validation, transforms, canvas serialisation, versions, voting, scoring, overlaps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import need_data
from recursia.errors import DataError
from recursia.tasks import arc
from recursia.tasks.arc import ArcTask, Version


def _task(train, test, task_id="t1", source="unit/test") -> ArcTask:
    g = lambda x: np.array(x, dtype=np.uint8)  # noqa: E731
    return ArcTask(task_id, source, [(g(i), g(o)) for i, o in train],
                   [(g(i), None if o is None else g(o)) for i, o in test])


def _random_task(rng: np.random.Generator, n_train: int = 3, task_id: str = "r") -> ArcTask:
    def grid():
        return rng.integers(0, 10, size=(rng.integers(1, 12), rng.integers(1, 12))).astype(np.uint8)
    return ArcTask(task_id, "unit/random", [(grid(), grid()) for _ in range(n_train)], [(grid(), grid())])


@pytest.fixture(scope="module")
def eval1() -> list[ArcTask]:
    return arc.read_task_dir(need_data("arc-agi-1", "evaluation"))


# ----------------------------------------------------------------------------------------------------------
# Readers on the real data
# ----------------------------------------------------------------------------------------------------------

def test_reads_arc_agi_1_evaluation(eval1):
    assert len(eval1) == 400
    assert sum(len(t.test) for t in eval1) == 419
    assert {t.source for t in eval1} == {"arc-agi-1/evaluation"}
    assert [t.task_id for t in eval1] == sorted(t.task_id for t in eval1)
    grids = [g for t in eval1 for g in t.grids()]
    assert all(g.dtype == np.uint8 and g.ndim == 2 and 1 <= min(g.shape) and max(g.shape) <= 30 for g in grids)
    assert all(t.has_test_outputs for t in eval1)


def test_read_source_root_tags_each_split():
    tasks = arc.read_source(need_data("arc-agi-1"))
    by_source = {}
    for t in tasks:
        by_source[t.source] = by_source.get(t.source, 0) + 1
    assert by_source == {"arc-agi-1/training": 400, "arc-agi-1/evaluation": 400}


def test_concept_arc_recurses_into_concepts_and_skips_minimal_tasks():
    root = need_data("concept-arc")
    tasks = arc.read_source(root)
    assert len(tasks) == 160 and {t.source for t in tasks} == {"concept-arc/corpus"}
    assert not any("Minimal" in t.task_id for t in tasks)
    assert len(arc.read_task_dir(root, skip_dirs=())) == 176  # the 16 minimal tasks when asked for


def test_single_file_and_default_source():
    path = need_data("arc-agi-1", "evaluation", "00576224.json")
    (task,) = arc.read_source(path)
    assert task.task_id == "00576224" and task.source == "arc-agi-1/evaluation"
    assert arc.read_task_file(path, source="mine").source == "mine"


def test_kaggle_format_matches_directory_format(eval1):
    challenges = need_data("arc-kaggle", "arc-agi_evaluation_challenges.json")
    kaggle = arc.read_source(challenges)  # finds the solutions file beside it
    assert [t.task_id for t in kaggle] == [t.task_id for t in eval1]
    assert {t.source for t in kaggle} == {"arc-agi-1/evaluation"}
    for k, d in zip(kaggle, eval1):
        assert arc.task_fingerprint(k) == arc.task_fingerprint(d)
        assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(k.test, d.test))


def test_kaggle_without_solutions_has_no_test_outputs():
    challenges = need_data("arc-kaggle", "arc-agi_evaluation_challenges.json")
    tasks = arc.read_kaggle(challenges)
    assert len(tasks) == 400 and not any(t.has_test_outputs for t in tasks)
    with pytest.raises(DataError, match="test input 1 has no known output"):
        tasks[0].test_outputs()


def test_read_source_refuses_a_solutions_file_and_a_kaggle_folder():
    with pytest.raises(DataError, match="solutions file"):
        arc.read_source(need_data("arc-kaggle", "arc-agi_evaluation_solutions.json"))
    with pytest.raises(DataError, match="name the challenges file"):
        arc.read_source(need_data("arc-kaggle"))


# ----------------------------------------------------------------------------------------------------------
# Validation of bad content
# ----------------------------------------------------------------------------------------------------------

GOOD = {"train": [{"input": [[1, 2], [3, 4]], "output": [[4]]}], "test": [{"input": [[0]], "output": [[1]]}]}


_DELETE = object()


def _with(path: tuple, value) -> dict:
    task = json.loads(json.dumps(GOOD))
    node = task
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return task


@pytest.mark.parametrize("path, value, message", [
    (("train", 0, "input"), [1, 2], r"train pair 1 input: grid must be a list of lists, but row 1 is a int"),
    (("train", 0, "input"), [[1, 2], [3]], r"train pair 1 input: ragged grid: row 2 has 1 values but row 1 has 2"),
    (("train", 0, "output"), [[4, 10]], r"train pair 1 output: value 10 at row 1, column 2 is outside 0..9"),
    (("train", 0, "output"), [[-1]], r"value -1 at row 1, column 1 is outside 0..9"),
    (("train", 0, "output"), [[1.5]], r"value 1.5 at row 1, column 1 is not an integer"),
    (("train", 0, "output"), [["3"]], r"value '3' at row 1, column 1 is not an integer"),
    (("train", 0, "output"), [[1, [2]]], r"value \[2\] at row 1, column 2 is not an integer"),
    (("train", 0, "output"), [[10 ** 30]], r"value 10+ at row 1, column 1 is outside 0..9"),
    (("test", 0, "input"), [[0] * 31], r"test pair 1 input: grid is 1x31; height and width must be 1..30"),
    (("test", 0, "input"), [[0]] * 31, r"grid is 31x1"),
    (("test", 0, "input"), [], r"grid must be a non-empty list of rows .* got an empty list"),
    (("test", 0, "input"), [[]], r"grid is 1x0"),
    (("train", 0, "input"), _DELETE, r"train pair 1: missing 'input'"),
    (("train", 0, "output"), _DELETE, r"train pair 1: missing 'output'"),
    (("test", 0, "output"), _DELETE, r"test pair 1: missing 'output'"),
    (("train",), [], r"'train' must be a non-empty list of pairs, but it is empty"),
    (("test",), _DELETE, r"'test' must be a non-empty list of pairs, but it is missing"),
    (("train", 0), [[1]], r"train pair 1: must be an object"),
])
def test_bad_content_is_named(tmp_path, path, value, message):
    f = tmp_path / "abc123.json"
    f.write_text(json.dumps(_with(path, value)))
    with pytest.raises(DataError, match=message) as info:
        arc.read_task_file(f)
    assert str(f) in str(info.value) and "task abc123" in str(info.value)


def test_test_output_optional_when_not_required(tmp_path):
    f = tmp_path / "hidden.json"
    f.write_text(json.dumps(_with(("test", 0, "output"), _DELETE)))
    task = arc.read_task_file(f, require_outputs=False)
    assert task.test[0][1] is None and not task.has_test_outputs


def test_bad_json_and_missing_files(tmp_path):
    f = tmp_path / "broken.json"
    f.write_text('{"train": [')
    with pytest.raises(DataError, match=r"broken.json: invalid JSON at line 1"):
        arc.read_task_file(f)
    with pytest.raises(DataError, match="not found"):
        arc.read_source(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no \\*.json task files"):
        arc.read_task_dir(tmp_path / "empty")


def test_duplicate_ids_in_a_folder_are_refused(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "same.json").write_text(json.dumps(GOOD))
    with pytest.raises(DataError, match="task id 'same' occurs twice"):
        arc.read_task_dir(tmp_path)


def test_kaggle_solution_count_must_match(tmp_path):
    c, s = tmp_path / "x_challenges.json", tmp_path / "x_solutions.json"
    c.write_text(json.dumps({"t9": {"train": GOOD["train"], "test": [{"input": [[0]]}, {"input": [[1]]}]}}))
    s.write_text(json.dumps({"t9": [[[1]]]}))
    with pytest.raises(DataError, match=r"task t9: .* gives 1 solutions for 2 test inputs"):
        arc.read_source(c)
    s.write_text(json.dumps({"other": []}))
    with pytest.raises(DataError, match=r"task t9: no solutions"):
        arc.read_source(c)
    s.write_text(json.dumps({"t9": [[[1]], [[2, 12]]]}))
    with pytest.raises(DataError, match=r"task t9: test pair 2 output: value 12"):
        arc.read_source(c)
    s.unlink()
    (task,) = arc.read_source(c)
    assert task.source == "x" and task.test[1][1] is None


# ----------------------------------------------------------------------------------------------------------
# Versions (colour map + dihedral transform)
# ----------------------------------------------------------------------------------------------------------

def test_every_transform_inverts_exactly_on_non_square_grids():
    rng = np.random.default_rng(0)
    grid = rng.integers(0, 10, size=(3, 7)).astype(np.uint8)
    for t in range(8):
        for _ in range(6):
            v = Version(t, np.concatenate([[0], rng.permutation(9) + 1]))
            moved = v.apply(grid)
            assert moved.shape == (grid.shape if t in (0, 2, 4, 5) else grid.shape[::-1])
            assert np.array_equal(v.invert(moved), grid)


def test_apply_maps_colours_then_transforms():
    colours = np.array([0, 2, 3, 4, 5, 6, 7, 8, 9, 1])
    v = Version(1, colours)
    grid = np.array([[0, 1, 9]], dtype=np.uint8)
    assert np.array_equal(v.apply(grid), np.rot90(colours[grid]))
    assert np.array_equal(v.apply(grid), [[1], [2], [0]])


@pytest.mark.parametrize("colours", [np.arange(9), np.array([1, 0, 2, 3, 4, 5, 6, 7, 8, 9]), np.zeros(10)])
def test_version_rejects_bad_colour_maps(colours):
    with pytest.raises(ValueError, match="colours"):
        Version(0, colours)


def test_versions_are_deterministic_distinct_and_start_with_the_original():
    rng = np.random.default_rng(1)
    task = _random_task(rng)
    a = arc.make_versions(task, 50, np.random.default_rng(7))
    b = arc.make_versions(task, 50, np.random.default_rng(7))
    assert a == b and len(a) == 51 and a[0].is_identity
    assert a != arc.make_versions(task, 50, np.random.default_rng(8))
    contents = {arc.task_fingerprint(v.apply_task(task)) + str(v.apply(task.test[0][1]).tobytes()) for v in a}
    assert len(contents) == 51


def test_symmetric_tasks_get_few_versions():
    blank = _task([([[0, 0], [0, 0]], [[0]])], [([[0, 0], [0, 0]], [[0]])])
    assert len(arc.make_versions(blank, 100, np.random.default_rng(0))) == 1
    one_colour = _task([([[3, 3], [3, 3]], [[3]])], [([[3]], [[3]])])
    versions = arc.make_versions(one_colour, 100, np.random.default_rng(0))
    assert len(versions) == 9  # only the colour of the 3s can change
    assert len({v.apply(np.array([[3]], np.uint8)).item() for v in versions}) == 9


def test_duplicates_compare_the_whole_task_including_test_outputs():
    # Only colours 1 and 2 occur (9 x 8 maps matter), and on a 1x2 grid the 8 transforms give 4 distinct layouts:
    # 288 distinct versions. The test output alone breaks the left-right symmetry; ignoring it would give 216.
    task = _task([([[1, 1]], [[1, 1]])], [([[1, 1]], [[1, 2]])])
    versions = arc.make_versions(task, 1000, np.random.default_rng(3), max_trials_factor=10)
    assert len(versions) == 288
    fixed = sorted(v.t for v in versions if v.colours[1] == 1 and v.colours[2] == 2)
    assert len(fixed) == 4 and len({0, 5} & set(fixed)) == len({2, 4} & set(fixed)) == 1


# ----------------------------------------------------------------------------------------------------------
# Canvas serialisation
# ----------------------------------------------------------------------------------------------------------

def test_eos_placement_cell_by_cell():
    inp = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.uint8)
    out = np.array([[9]], dtype=np.uint8)
    x, y = arc.encode_grid_pair(inp, out, offset=(1, 2))
    x, y = x.reshape(30, 30), y.reshape(30, 30)
    want_x = np.zeros((30, 30), dtype=np.uint8)
    want_x[1, 2:5] = [2, 3, 4]
    want_x[2, 2:5] = [5, 6, 7]
    want_x[3, 2:5] = 1  # row below the grid
    want_x[1:3, 5] = 1  # column right of it; the corner (3, 5) stays PAD
    assert np.array_equal(x, want_x) and x[3, 5] == 0
    want_y = np.zeros((30, 30), dtype=np.uint8)
    want_y[1, 2], want_y[2, 2], want_y[1, 3] = 11, 1, 1
    assert np.array_equal(y, want_y)


def test_edges_of_the_canvas_get_no_markers():
    full = np.full((30, 30), 4, dtype=np.uint8)
    x, _ = arc.encode_grid_pair(full, full)
    assert (x == 6).all()
    wide = np.ones((2, 30), dtype=np.uint8)
    x, _ = arc.encode_grid_pair(wide, wide)
    x = x.reshape(30, 30)
    assert (x[:2] == 3).all() and (x[2] == 1).all() and (x[3:] == 0).all()
    tall = np.ones((30, 1), dtype=np.uint8)
    x, _ = arc.encode_grid_pair(tall, tall, offset=(0, 29))
    assert (x.reshape(30, 30)[:, 28] == 0).all() and (x.reshape(30, 30)[:, 29] == 3).all()


def test_unknown_output_gives_unsupervised_labels_and_bad_offsets_fail():
    x, y = arc.encode_grid_pair(np.ones((2, 2), np.uint8), None)
    assert x.dtype == y.dtype == np.uint8 and x.shape == y.shape == (900,) and not y.any()
    with pytest.raises(ValueError, match="outside"):
        arc.encode_grid_pair(np.ones((2, 2), np.uint8), np.ones((5, 1), np.uint8), offset=(26, 0))


def test_round_trip_every_arc_agi_1_evaluation_grid(eval1):
    rng = np.random.default_rng(0)
    for task in eval1:
        for inp, out in task.train + task.test:
            x, y = arc.encode_grid_pair(inp, out)
            assert np.array_equal(arc.decode_prediction(x), inp) and np.array_equal(arc.decode_prediction(y), out)
            off = arc.random_offset(rng, inp, out)
            x, y = arc.encode_grid_pair(inp, out, off)
            assert np.array_equal(arc.decode_prediction(y, off), out)
            assert np.array_equal(arc.decode_prediction(x, off), inp)


def test_random_offsets_cover_the_allowed_range():
    rng = np.random.default_rng(0)
    inp, out = np.zeros((3, 28), np.uint8), np.zeros((27, 2), np.uint8)
    offsets = np.array([arc.random_offset(rng, inp, out) for _ in range(300)])
    assert set(offsets[:, 0]) == {0, 1, 2, 3} and set(offsets[:, 1]) == {0, 1, 2}


def test_decode_takes_the_largest_rectangle():
    t = np.zeros((30, 30), dtype=np.int64)
    t[0:2, 0:5] = 2  # two rows of width 5 (area 10) ...
    t[2:5, 0:3] = 5  # ... then three rows of width 3: five rows x 3 = 15 wins
    t[2:5, 3] = 1
    got = arc.decode_prediction(t.ravel())
    assert got.shape == (5, 3) and got[0, 0] == 0 and got[4, 2] == 3
    t[0, 0] = 1  # an end marker first: nothing to read
    assert arc.decode_prediction(t.ravel()).shape == (0, 0)
    assert arc.decode_prediction(np.full(900, 13)).shape == (0, 0)
    assert [g.shape for g in arc.decode_predictions(np.stack([np.full(900, 2), np.zeros(900)]))] == [(30, 30), (0, 0)]


def test_encode_task_version_translates_only_demonstrations(eval1):
    task = eval1[5]
    version = arc.make_versions(task, 3, np.random.default_rng(0))[-1]
    enc = arc.encode_task_version(task, version, np.random.default_rng(1), translate=True)
    moved = version.apply_task(task)
    assert enc["train_inputs"].shape == (len(task.train), 900) and enc["test_labels"].shape == (len(task.test), 900)
    for n, (inp, out) in enumerate(moved.train):
        off = tuple(enc["train_offsets"][n])
        assert np.array_equal(arc.decode_prediction(enc["train_labels"][n], off), out)
        assert np.array_equal(arc.decode_prediction(enc["train_inputs"][n], off), inp)
    for n, (inp, out) in enumerate(moved.test):
        assert np.array_equal(version.invert(arc.decode_prediction(enc["test_labels"][n])), task.test[n][1])
    assert enc["test_has_output"].all()
    assert enc["train_offsets"].any()  # some demonstration really moved
    plain = arc.encode_task_version(task, version, None, translate=False)
    assert not plain["train_offsets"].any()
    with pytest.raises(ValueError, match="needs an rng"):
        arc.encode_task_version(task, version, None, translate=True)


# ----------------------------------------------------------------------------------------------------------
# Voting, scoring, submission
# ----------------------------------------------------------------------------------------------------------

A, B, C = (np.full((2, 2), k, dtype=np.uint8) for k in (1, 2, 3))


def test_vote_majority_beats_a_confident_minority():
    ranked = arc.vote([(A, 0.1), (B, 0.99), (A, 0.2), (C, 0.5)])
    assert [g[0, 0] for g in ranked] == [1, 2, 3]


def test_vote_tie_broken_by_mean_confidence():
    ranked = arc.vote([(A, 0.9), (A, 0.1), (B, 0.6), (B, 0.6)])  # A mean 0.5, B mean 0.6
    assert [g[0, 0] for g in ranked] == [2, 1]


def test_vote_groups_by_shape_and_drops_empty_grids():
    flat = np.ones((1, 4), dtype=np.uint8)
    square = np.ones((2, 2), dtype=np.uint8)
    empty = np.zeros((0, 0), dtype=np.uint8)
    ranked = arc.vote([(flat, 0.5), (square, 0.5), (square, 0.4), (empty, 1.0), (empty, 1.0), (empty, 1.0)])
    assert [g.shape for g in ranked] == [(2, 2), (1, 4)]


def test_score_task_counts_test_inputs():
    assert arc.score_task([[A], [C, B]], [A, B], k=1) == 0.5
    assert arc.score_task([[A], [C, B]], [A, B], k=2) == 1.0
    assert arc.score_task([[A]], [A, B], k=2) == 0.5  # a missing list counts as unsolved
    with pytest.raises(ValueError, match="prediction lists"):
        arc.score_task([[A], [B], [C]], [A, B], k=2)


def test_perfect_predictions_score_one_and_wrong_ones_zero(eval1):
    tasks = eval1[:6]
    perfect = {t.task_id: [[out] for out in t.test_outputs()] for t in tasks}
    result = arc.score(perfect, tasks)
    assert result["pass@1"] == result["pass@2"] == result["pass@10"] == 1.0
    assert result["tasks"] == 6 and set(result["per_task"]) == {t.task_id for t in tasks}
    wrong = {t.task_id: [[(out + 1) % 10] for out in t.test_outputs()] for t in tasks}
    assert arc.score(wrong, tasks)["pass@2"] == 0.0
    assert arc.score({}, tasks)["pass@2"] == 0.0
    second = {t.task_id: [[(out + 1) % 10, out] for out in t.test_outputs()] for t in tasks}
    result = arc.score(second, tasks, ks=(1, 3))
    assert result["pass@1"] == 0.0 and result["pass@2"] == result["pass@3"] == 1.0


def test_score_is_a_mean_over_tasks_of_test_input_fractions():
    two = _task([([[1]], [[1]])], [([[1]], [[1]]), ([[2]], [[2]])], task_id="two")
    one = _task([([[1]], [[1]])], [([[3]], [[3]])], task_id="one")
    preds = {"two": [[np.array([[1]])], [np.array([[0]])]], "one": [[np.array([[3]])]]}
    result = arc.score(preds, [two, one])
    assert result["pass@2"] == pytest.approx(0.75) and result["per_task"]["two"]["pass@2"] == 0.5
    with pytest.raises(ValueError, match="not being scored"):
        arc.score({"zzz": []}, [two])


def test_submission_format():
    two = _task([([[1]], [[1]])], [([[1]], None), ([[2]], None)], task_id="two")
    none = _task([([[1]], [[1]])], [([[1]], None)], task_id="none")
    preds = {"two": [[A], [B, C, A]]}
    sub = arc.submission(preds, [two, none])
    assert list(sub) == ["two", "none"] and len(sub["two"]) == 2
    assert sub["two"][0] == {"attempt_1": A.tolist(), "attempt_2": A.tolist()}
    assert sub["two"][1] == {"attempt_1": B.tolist(), "attempt_2": C.tolist()}
    assert sub["none"] == [{"attempt_1": [[0]], "attempt_2": [[0]]}]
    assert type(sub["two"][0]["attempt_1"][0][0]) is int
    json.dumps(sub)


def test_submission_of_real_task_has_one_entry_per_test_input(eval1):
    tasks = [t for t in eval1 if len(t.test) > 1][:3]
    preds = {t.task_id: [arc.vote([(out, 1.0)]) for out in t.test_outputs()] for t in tasks}
    sub = arc.submission(preds, tasks)
    for t in tasks:
        assert len(sub[t.task_id]) == len(t.test)
        for entry, out in zip(sub[t.task_id], t.test_outputs()):
            assert set(entry) == {"attempt_1", "attempt_2"} and entry["attempt_1"] == out.tolist()


# ----------------------------------------------------------------------------------------------------------
# Identity and overlap between data sets
# ----------------------------------------------------------------------------------------------------------

def test_fingerprint_ignores_name_and_pair_order_but_not_content():
    rng = np.random.default_rng(5)
    task = _random_task(rng, n_train=3)
    renamed = ArcTask("other", "elsewhere", task.train[::-1], task.test)
    assert arc.task_fingerprint(renamed) == arc.task_fingerprint(task)
    changed = [(i.copy(), o.copy()) for i, o in task.train]
    changed[0][1][0, 0] = (changed[0][1][0, 0] + 1) % 10
    assert arc.task_fingerprint(ArcTask("t", "s", changed, task.test)) != arc.task_fingerprint(task)
    flat = np.arange(6, dtype=np.uint8).reshape(2, 3)  # same cells in another shape must differ too
    a = ArcTask("a", "s", [(flat, flat)], task.test)
    b = ArcTask("b", "s", [(flat.reshape(3, 2), flat)], task.test)
    assert arc.task_fingerprint(a) != arc.task_fingerprint(b)


def test_arc_agi_2_training_contains_arc_agi_1_evaluation(eval1):
    train2 = arc.read_task_dir(need_data("arc-agi-2", "training"))
    prints = {arc.task_fingerprint(t): t.task_id for t in eval1}
    exact = {t.task_id for t in train2 if arc.task_fingerprint(t) in prints}
    overlaps = arc.find_overlaps(train2, eval1)
    assert len(overlaps) == 376 and all(ids == [tid] for tid, ids in overlaps.items())
    # One copy (ac0c5833) had two demonstration cells corrected: same test pairs, different fingerprint.
    assert len(exact) == 375 and set(overlaps) - exact == {"ac0c5833"}


def test_overlap_needs_the_same_answers_when_both_are_known():
    base = _task([([[1]], [[2]])], [([[5, 5]], [[6]])], task_id="base")
    corrected = _task([([[1]], [[3]])], [([[5, 5]], [[6]])], task_id="corrected")  # demo fixed, same test pair
    other_rule = _task([([[1]], [[1]])], [([[5, 5]], [[7]])], task_id="other_rule")  # same input, other answer
    hidden = _task([([[4]], [[4]])], [([[5, 5]], None)], task_id="hidden")  # answer unknown: assume a leak
    found = arc.find_overlaps([corrected, other_rule, hidden], [base])
    assert found == {"corrected": ["base"], "hidden": ["base"]}
    assert arc.find_overlaps([base], [corrected, other_rule]) == {"base": ["corrected"]}


def test_arc_agi_1_evaluation_repeats_one_training_task(eval1):
    train1 = arc.read_task_dir(need_data("arc-agi-1", "training"))
    assert arc.find_overlaps(eval1, train1) == {"070dd51e": ["40853293"]}
