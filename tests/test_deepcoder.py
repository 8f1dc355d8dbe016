"""DeepCoder: the interpreter against every published test task, the text form, the generator's rules and
determinism, the token encoding, execution-based verification, the enumerative baseline and the data commands."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest
from typer.testing import CliRunner

from recursia.dataset import Dataset
from recursia.errors import DataError, PuzzleError
from recursia.tasks import deepcoder as D
from recursia.tasks import deepcoder_search as S
from recursia.tasks import get_task

from conftest import need_data

SPLITS = ("NONE", "LENGTH_GENERALIZATION")


def _lines(split: str) -> list[dict]:
    path = need_data("exedec", "deepcoder", f"{split}.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def test_tasks() -> dict[str, list[D.DeepCoderTask]]:
    return {s: D.read_tasks(need_data("exedec", "deepcoder", f"{s}.jsonl")) for s in SPLITS}


@pytest.fixture(scope="module")
def generated() -> list[D.DeepCoderTask]:
    return D.generate(100, seed=0)


def _task(program: str, inputs: list[str], outputs: list[str] | None = None) -> D.DeepCoderTask:
    """A task whose outputs are computed by `program` (when not given)."""
    p = D.parse_program(program)
    ins = tuple(D.parse_state(s) for s in inputs)
    outs = tuple(D.parse_value(s) for s in outputs) if outputs else tuple(D.run_program(p, ex) for ex in ins)
    return D.DeepCoderTask(ins, outs, p)


# ---------------------------------------------------------------------------------------------------------- DSL

@pytest.mark.parametrize("split", SPLITS)
def test_interpreter_reproduces_every_test_output(split):
    lines = _lines(split)
    assert len(lines) == 500
    for line in lines:
        program = D.parse_program(line["program"])
        for state, expected in zip(line["inputs"], line["outputs"], strict=True):
            got = D.run_program(program, D.parse_state(state))
            assert got is not None and D.format_value(got) == expected, (line["index"], state)


@pytest.mark.parametrize("split", SPLITS)
def test_text_form_round_trips(split):
    for line in _lines(split):
        assert D.format_program(D.parse_program(line["program"])) == line["program"]
        assert D.task_to_json(D.parse_task(line)) == line


def test_semantics_from_the_reference():
    run = lambda prog, *values: D.run_program(D.parse_program(prog), values)  # noqa: E731
    one = "x0 = INPUT | x1 = "
    assert run(one + "Map (/2) x0", (-3, 7)) == (-2, 3)  # floor division
    assert run(one + "Map (/3) x0", (-5,)) == (-2,) and run(one + "Map (/4) x0", (-1,)) == (-1,)
    assert run(one + "Filter (%2==1) x0", (-3, -2, 0, 5)) == (-3, 5)  # mathematical modulo
    assert run(one + "Filter (>0) x0", (0, 1, -1)) == (1,) and run(one + "Count (<0) x0", (0, -1, -2)) == 2
    assert run(one + "Scanl1 (-) x0", (5, 1, 1)) == (5, 4, 3)  # accumulator on the left
    assert run(one + "Scanl1 (+) x0", ()) == ()
    assert run(one + "ZipWith (-) x0 x0", (1, 2)) == (0, 0)
    two = "x0 = INPUT | x1 = INPUT | x2 = "
    assert run(two + "Take x0 x1", -2, (1, 2, 3)) == (1,) and run(two + "Drop x0 x1", -2, (1, 2, 3)) == (2, 3)
    assert run(two + "Take x0 x1", 9, (1, 2)) == (1, 2) and run(two + "Drop x0 x1", 9, (1, 2)) == ()
    assert run(two + "Access x0 x1", -1, (1, 2)) is None and run(two + "Access x0 x1", 1, (1, 2)) == 2
    assert run(two + "ZipWith (max) x0 x1", (1, 9, 3), (4, 2)) == (4, 9)  # truncates to the shorter list
    assert run(one + "Sum x0", (40, 30)) is None and run(one + "Sum x0", ()) == 0  # range-checked results
    assert run(one + "Map (**2) x0", (8,)) is None and run(one + "Scanl1 (*) x0", (5, 5, 5)) is None
    assert run(one + "Head x0", ()) is None and run(one + "Minimum x0", ()) is None
    assert run(one + "Head x0 | x2 = Map (+1) x0", ()) is None  # an invalid statement ends the example
    assert run("x0 = INPUT | x1 = INPUT", (1,), 3) == 3  # no statement: the last input
    assert D.parse_program("x0 = INPUT | x1 = Sort x0 |") == D.parse_program("x0 = INPUT | x1 = Sort x0")
    renamed = D.parse_program("x7 = INPUT | x3 = Reverse x7")
    assert D.format_program(renamed) == "x7 = INPUT | x3 = Reverse x7" and run("x7 = INPUT | x3 = Reverse x7",
                                                                               (1, 2)) == (2, 1)


@pytest.mark.parametrize("text", [
    "x0 = INPUT | x1 = Foo x0", "x0 = INPUT | x1 = Map x0", "x0 = INPUT | x1 = Sort (+1) x0",
    "x0 = INPUT | x1 = Map (*2) x2", "x0 = INPUT | x1 = Sort x0 | x2 = INPUT", "x0 = INPUT | x0 = Sort x0",
    "x0 = INPUT | x1 = Sort x1", "x0 = INPUT | x1 = Map x0 (*2)", "x0 = INPUT | x1 Sort x0", "",
    "x0 = INPUT | x1 = Head x0 x0",
])
def test_malformed_programs_raise_puzzle_error(text):
    with pytest.raises(PuzzleError):
        D.parse_program(text)


def test_ill_typed_programs_do_not_run():
    p = D.parse_program("x0 = INPUT | x1 = INPUT | x2 = Head x0")
    with pytest.raises(PuzzleError, match="types"):
        D.run_program(p, (3, (1, 2)))  # Head of an int
    assert not D.solves(p, [(3, (1, 2))], [1])
    with pytest.raises(PuzzleError, match="inputs"):
        D.run_program(p, ((1,),))


@pytest.mark.parametrize("text", ["[ 1 2", "[ 1 2 3 4 5 6 ]", "51", "[ 1 x ]", "--3", "[1 2]"])
def test_malformed_values_raise_puzzle_error(text):
    with pytest.raises(PuzzleError):
        D.parse_value(text)


def test_a_malformed_line_names_its_line(tmp_path, test_tasks):
    good = json.dumps(D.task_to_json(test_tasks["NONE"][0]))
    for bad in ('{"inputs": ["x0 = [ 1 2"], "outputs": ["3"]}', "not json", '{"inputs": [], "outputs": []}',
                json.dumps({**json.loads(good), "program": "x0 = INPUT | x1 = Mop x0"})):
        path = tmp_path / "tasks.jsonl"
        path.write_text(good + "\n" + bad + "\n")
        with pytest.raises(DataError, match=r"tasks\.jsonl, line 2: "):
            D.read_tasks(path)
    with pytest.raises(DataError, match="no task file"):
        D.read_tasks(tmp_path / "missing.jsonl")


# ---------------------------------------------------------------------------------------------------------- generator

def _columns(task: D.DeepCoderTask) -> list[tuple]:
    """Every variable's value on every example (inputs, then each statement)."""
    cols = [tuple(ex[i] for ex in task.inputs) for i in range(task.num_inputs)]
    for s in task.program.statements:
        cols.append(tuple(D.apply_op(s.op, s.lam, [c[k] for c in (cols[a] for a in s.args)])
                          for k in range(len(task.inputs))))
    return cols


def _length_one_outputs(inputs) -> set[tuple]:
    """Outputs of every one-statement program on these inputs, by brute force (independent of the generator)."""
    cols = [tuple(ex[i] for ex in inputs) for i in range(len(inputs[0]))]
    types = ["L" if isinstance(c[0], tuple) else "I" for c in cols]
    found = set()
    for op, (kind, arg_types, _) in D.SIGNATURES.items():
        for lam in (D.LAMBDAS_OF_KIND[kind] if kind else (None,)):
            for args in itertools.product(*[[i for i, t in enumerate(types) if t == want] for want in arg_types]):
                found.add(tuple(D.apply_op(op, lam, [cols[a][k] for a in args]) for k in range(len(inputs))))
    return found


def test_generated_tasks_follow_the_reference_rules(generated):
    lengths = [len(t.program) for t in generated]
    assert sorted(set(lengths)) == [1, 2, 3, 4, 5]
    assert all(abs(lengths.count(n) - 20) <= 2 for n in range(1, 6))  # dealt evenly (deficits roll on)
    for t in generated:
        assert len(t.inputs) == D.NUM_EXAMPLES and t.num_inputs in (1, 2)
        assert len(set(t.inputs)) == D.NUM_EXAMPLES, "examples are distinct"
        kinds = [isinstance(v, tuple) for v in t.inputs[0]]
        assert any(kinds) and all([isinstance(v, tuple) for v in ex] == kinds for ex in t.inputs)
        for ex in t.inputs:
            for v in ex:
                if isinstance(v, tuple):
                    assert len(v) <= 5 and all(-50 <= x <= 50 for x in v)
                else:
                    assert 0 <= v <= 5
        cols = _columns(t)
        assert all(None not in c for c in cols), "every statement is valid on every example"
        assert len(set(cols)) == len(cols), "no statement repeats an earlier variable (redundant)"
        used = {a for s in t.program.statements for a in s.args}
        assert all(t.num_inputs + j in used for j in range(len(t.program) - 1)), "dead code"
        assert cols[-1] == t.outputs and D.solves(t.program, t.inputs, t.outputs)
        assert len(set(t.outputs)) == D.NUM_EXAMPLES, "outputs are distinct, hence not constant"
        for col in cols:
            for v in col:
                assert all(-50 <= x <= 50 for x in (v if isinstance(v, tuple) else (v,)))
        if len(t.program) > 1:
            assert t.outputs not in _length_one_outputs(t.inputs), "a shorter program gives the same outputs"
    for g in range(0, len(generated), 10):  # one search: shared inputs, functionally distinct programs
        group = generated[g:g + 10]
        assert len({t.inputs for t in group}) == 1 and len({t.outputs for t in group}) == len(group)


def test_generation_is_deterministic_per_seed(generated):
    again = D.generate(100, seed=0)
    assert [D.task_to_json(t) for t in again] == [D.task_to_json(t) for t in generated]
    other = D.generate(20, seed=1)
    assert [D.task_to_json(t) for t in other] != [D.task_to_json(t) for t in generated[:20]]


def test_generation_lengths_and_arguments():
    short = D.generate(20, seed=3, max_length=2)
    assert {len(t.program) for t in short} == {1, 2}
    assert {len(t.program) for t in D.generate(10, seed=3, min_length=5)} == {5}
    with pytest.raises(DataError, match="lengths"):
        D.generate(1, max_length=6)


def test_random_inputs_follow_the_input_rules():
    rng = random.Random(0)
    counts = {1: 0, 2: 0}
    for _ in range(300):
        ins = D.random_inputs(rng)
        counts[len(ins[0])] += 1
        assert len(set(ins)) == 3
    assert 100 < counts[1] < 200  # one or two inputs, uniformly


# ---------------------------------------------------------------------------------------------------------- encoding

def test_encoding_round_trips(test_tasks, generated):
    tasks = test_tasks["NONE"][:200] + test_tasks["LENGTH_GENERALIZATION"][:50] + generated
    inputs, labels = D.encode(tasks)
    assert inputs.shape == labels.shape == (len(tasks), D.SEQ_LEN) == (len(tasks), 83)
    assert inputs.dtype == np.uint8 and int(max(inputs.max(), labels.max())) < D.VOCAB_SIZE == 154
    assert (labels[:, :D.SPEC_LEN] == 0).all() and (labels[:, D.SPEC_LEN:] != 0).all()
    assert (inputs[:, D.SPEC_LEN:] == D.SLOT).all()
    for t, x, y in zip(tasks, inputs, labels):
        spec = D.decode_spec(x)
        assert spec.inputs == t.inputs and spec.outputs == t.outputs
        program = D.decode_program(y, t.num_inputs)
        assert program == D.Program(t.num_inputs, t.program.statements)
        assert D.verify(x, y) and D.check_answer(x, y) == []
        assert (D.as_question(x) == x).all()
    assert D.verify_batch(inputs[:5], labels[:5]).all()


def test_slot_naming_is_fixed():
    t = _task("x0 = INPUT | x1 = Sort x0 | x2 = Map (*2) x1", ["x0 = [ 3 1 ]", "x0 = [ 2 ]", "x0 = [ ]"])
    _, y = D.encode_task(t)
    names = [D.TOKENS[i] for i in y[D.PROGRAM_START:D.PROGRAM_START + 8]]
    assert names == ["Sort", "x0", "<EOS>", "<EOS>", "Map", "(*2)", "x2", "<EOS>"]  # statement 1 is x2


# ---------------------------------------------------------------------------------------------------------- verify

def _with_program(x: np.ndarray, program: str) -> np.ndarray:
    """The token row of an answer whose program cells hold `program` (text, canonical names)."""
    p = D.parse_program(program)
    spec = D.decode_spec(x)
    return D.encode_task(D.DeepCoderTask(spec.inputs, spec.outputs, p))[1]


def test_verify_accepts_any_program_with_the_same_outputs():
    t = _task("x0 = INPUT | x1 = Map (*2) x0", ["x0 = [ 3 1 ]", "x0 = [ 2 -5 7 ]", "x0 = [ ]"])
    x, y = D.encode_task(t)
    assert D.verify(x, y)
    other = _with_program(x, "x0 = INPUT | x1 = ZipWith (+) x0 x0")
    assert not (other == y).all() and D.verify(x, other)
    assert D.verify(x, _with_program(x, "x0 = INPUT | x1 = Map (*4) x0 | x2 = Map (/2) x1"))
    assert not D.verify(x, _with_program(x, "x0 = INPUT | x1 = Map (*3) x0"))
    assert D.check_answer(x, _with_program(x, "x0 = INPUT | x1 = Map (*3) x0"))[0].startswith("example 1:")


def test_verify_rejects_malformed_predictions_without_crashing():
    t = _task("x0 = INPUT | x1 = INPUT | x2 = Take x1 x0", ["x0 = [ 3 1 ] | x1 = 1", "x0 = [ 2 -5 7 ] | x1 = 2",
                                                         "x0 = [ 4 ] | x1 = 0"])
    x, y = D.encode_task(t)
    assert D.verify(x, y)
    tok = D.TOKEN_ID
    cases = []
    for cells in (["<EOS>"], ["Map", "(>0)", "x0"], ["Map", "x0", "(*2)"], ["Head", "x1"], ["Sort", "x5"],
                  ["Take", "x0", "x1"], ["[", "x0"], ["ZipWith", "(+)", "x0"], ["Sort", "x2"]):
        bad = y.copy()
        bad[D.PROGRAM_START:] = D.EOS
        bad[D.PROGRAM_START:D.PROGRAM_START + len(cells)] = [tok[c] for c in cells]
        cases.append(bad)
    cases += [np.zeros(D.SEQ_LEN, np.uint8), np.full(D.SEQ_LEN, D.SLOT, np.uint8), y[:10], y[None, :-1]]
    for bad in cases:
        assert D.verify(x, bad) is False
    rng = np.random.default_rng(0)
    noise = rng.integers(0, D.VOCAB_SIZE, size=(300, D.SEQ_LEN)).astype(np.uint8)
    noise[::2, D.PROGRAM_START:D.PROGRAM_START + 4] = y[D.PROGRAM_START:D.PROGRAM_START + 4]  # plausible starts
    assert D.verify_batch(np.repeat(x[None], 300, 0), noise).dtype == bool
    assert D.decode_program(noise[0], 3) is None


def test_task_registration(test_tasks):
    task = get_task("deepcoder")
    assert task.seq_len == D.SEQ_LEN and task.vocab_size == D.VOCAB_SIZE
    row = task.parse(json.dumps(D.task_to_json(test_tasks["NONE"][3])))
    x, y = D.encode_task(test_tasks["NONE"][3])
    assert (row == x).all() and task.check(row, y) == [] and task.check(row, row)
    assert task.metrics(x[None], y[None])["verified"].tolist() == [True]
    assert task.format(row).startswith("example 1: x0 = [") and "program: x0 = INPUT" in D.format_row(row, y)


# ---------------------------------------------------------------------------------------------------------- search

def test_search_solves_short_tasks_by_execution(test_tasks):
    none = test_tasks["NONE"]
    picked = [t for t in none if len(t.program) == 1][:3] + [t for t in none if len(t.program) == 2][:3]
    for t in picked:
        r = S.search_task(t, time_limit=2.0)
        assert r.solved and r.seconds < 2.0 and r.tried > 0
        assert len(r.program) <= len(t.program) and D.solves(r.program, t.inputs, t.outputs)


def test_search_finds_an_equivalent_program():
    # written with a redundant detour; the search finds a shorter program with the same outputs
    t = _task("x0 = INPUT | x1 = Map (*2) x0 | x2 = Map (*2) x1 | x3 = Reverse x2",
              ["x0 = [ 3 1 ]", "x0 = [ 2 -5 7 ]", "x0 = [ ]"])
    r = S.search_task(t, time_limit=2.0)
    assert r.solved and len(r.program) == 2 and D.format_program(r.program) != D.format_program(t.program)
    # a diamond: a sub-result used twice
    t = _task("x0 = INPUT | x1 = Sort x0 | x2 = Scanl1 (+) x1 | x3 = ZipWith (*) x1 x2",
              ["x0 = [ 3 1 2 ]", "x0 = [ 2 -5 1 0 ]", "x0 = [ 4 ]"])
    r = S.search_task(t, time_limit=3.0)
    assert r.solved and len(r.program) <= 3


def test_search_stops_at_its_time_limit(test_tasks):
    t = next(t for t in test_tasks["LENGTH_GENERALIZATION"] if len(t.program) == 5)
    r = S.search_task(t, time_limit=0.2)
    assert r.seconds < 0.6 and (r.solved or r.timed_out)


def test_evaluate_file_reports_by_length(tmp_path, test_tasks):
    path = tmp_path / "few.jsonl"
    D.write_tasks(test_tasks["NONE"][:10], path)
    result = S.evaluate_file(path, time_limit=0.05)
    assert result["tasks"] == 10 and set(result["by_length"]) <= {"1", "2", "3", "4", "5"}
    assert result["by_length"]["1"]["solve_rate"] == 1.0
    assert S.summary_lines(result)[0].startswith(str(path))


# ---------------------------------------------------------------------------------------------------------- commands

def test_data_commands(tmp_path):
    from recursia.cli import app

    source = need_data("exedec", "deepcoder", "NONE.jsonl")
    runner = CliRunner()
    out = tmp_path / "gen"
    r = runner.invoke(app, ["data", "generate", "deepcoder", "--out", str(out), "--count", "30",
                            "--test-count", "10", "--seed", "2", "--max-length", "3"])
    assert r.exit_code == 0, r.output
    ds = Dataset(out)
    assert ds.task == "deepcoder" and ds.manifest["seq_len"] == 83 and ds.manifest["vocab_size"] == 154
    train = ds.split("train")
    assert len(train) == 30 and len(ds.split("test")) == 10 and set(np.asarray(train.extra("length"))) <= {1, 2, 3}
    assert D.verify_batch(np.asarray(train.inputs), np.asarray(train.labels)).all()
    built = tmp_path / "none"
    r = runner.invoke(app, ["data", "build", "deepcoder", "--source", str(source), "--out", str(built)])
    assert r.exit_code == 0, r.output
    ds = Dataset(built)
    assert list(ds.splits) == ["test"] and len(ds.split("test")) == 500
    test = ds.split("test")
    assert np.asarray(test.extra("index")).tolist() == list(range(500))
    assert D.verify_batch(np.asarray(test.inputs)[:50], np.asarray(test.labels)[:50]).all()
