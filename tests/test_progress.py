"""recursia.progress: tqdm on a terminal, rare plain lines (no carriage returns) everywhere else."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from recursia import progress
from recursia.progress import LineProgress, bar

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(progress.time, "monotonic", c)
    return c


def test_not_a_terminal_gives_line_progress():
    out = io.StringIO()
    b = bar(total=3, desc="x", file=out)
    assert isinstance(b, LineProgress)
    b.close()


def test_lines_at_most_every_interval_plus_the_final_one(clock):
    out = io.StringIO()
    b = bar(total=100, desc="train", unit="step", file=out, leave=False, dynamic_ncols=True)
    for i in range(100):  # one step per simulated second: 100 s, lines at 30, 60 and 90 s, then the final one
        clock.now += 1.0
        b.update(1)
        if i == 49:
            b.set_postfix(loss=f"{0.5:.3f}", exact=0.25)
    b.close()
    b.close()  # a second close (train.py closes in `finally` too) writes nothing more
    text = out.getvalue()
    lines = text.splitlines()
    assert "\r" not in text
    assert len(lines) == 4, lines
    assert lines[0] == "train: 30/100 (30%), 1 step/s, 0:30 elapsed, 1:10 left"
    assert lines[1] == "train: 60/100 (60%), 1 step/s, 1:00 elapsed, 0:40 left, loss=0.500, exact=0.25"
    assert lines[-1] == "train: 100/100 (100%), 1 step/s, 1:40 elapsed, loss=0.500, exact=0.25"


def test_no_repeated_final_line_and_slow_rates(clock):
    out = io.StringIO()
    b = LineProgress(total=2, desc="eval", unit="ex", file=out, interval=30)
    clock.now += 40
    b.update(1)  # 40 s for one example: a line, in seconds per example
    clock.now += 10
    b.update(1)
    b.close()
    lines = out.getvalue().splitlines()
    assert lines == ["eval: 1/2 (50%), 40 s/ex, 0:40 elapsed, 0:40 left", "eval: 2/2 (100%), 25 s/ex, 0:50 elapsed"]
    out2 = io.StringIO()
    b = LineProgress(total=1, desc="d", file=out2, interval=30)
    clock.now += 31
    b.update(1)  # this line already shows the final count: close adds nothing
    b.close()
    assert len(out2.getvalue().splitlines()) == 1


def test_iteration_description_resume_and_write(clock):
    out = io.StringIO()
    seen = []
    b = bar(["a", "b", "c"], desc="tasks", unit="task", file=out)
    assert len(b) == 3
    for i, item in enumerate(b):
        seen.append(item)
        clock.now += 1
        b.set_description(f"tasks ({i})")
        b.write("a message")
    assert seen == ["a", "b", "c"]
    assert b.n == 3 and b.closed
    assert out.getvalue().splitlines() == ["a message"] * 3 + ["tasks (2): 3/3 (100%), 1 task/s, 0:03 elapsed"]
    out = io.StringIO()
    with bar(total=10, initial=4, desc="train", file=out) as b:  # a resumed run: the rate counts new steps only
        clock.now += 2
        b.update(6)
    assert out.getvalue() == "train: 10/10 (100%), 3 it/s, 0:02 elapsed\n"
    out = io.StringIO()
    g = bar((x for x in range(5)), desc="gen", file=out)  # no length: the count alone
    assert list(g) == [0, 1, 2, 3, 4]
    assert out.getvalue().startswith("gen: 5 it, ")
    out = io.StringIO()
    progress.write("plain", file=out)
    assert out.getvalue() == "plain\n"


def test_disabled_writes_nothing(clock):
    out = io.StringIO()
    b = bar(total=5, desc="quiet", disable=True, file=out)
    for _ in range(5):
        clock.now += 100
        b.update(1)
    b.close()
    assert out.getvalue() == ""


SCRIPT = """
import time
from recursia.progress import bar
start = time.monotonic()
b = bar(total=400, desc="work", unit="job", interval={interval})
for i in range(400):
    time.sleep(0.005)
    b.update(1)
    b.set_postfix(i=i)
b.close()
print(time.monotonic() - start)
"""


def _run(interval: float, stderr) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT.format(interval=interval)], stderr=stderr,
                          stdout=subprocess.PIPE, env=ENV, timeout=120, check=True)


def test_pipe_gets_few_plain_lines():
    quiet = _run(30, subprocess.PIPE).stderr.decode()  # about 2 s of work: the final line only
    assert "\r" not in quiet
    assert quiet.splitlines() == [quiet.strip()]
    assert quiet.startswith("work: 400/400 (100%), ") and quiet.rstrip().endswith("i=399")
    proc = _run(0.5, subprocess.PIPE)  # a line every 0.5 s at most, and the final one
    chatty, seconds = proc.stderr.decode(), float(proc.stdout)
    lines = chatty.splitlines()
    assert "\r" not in chatty
    assert 2 <= len(lines) <= seconds / 0.5 + 1, (seconds, lines)
    assert all(line.startswith("work: ") for line in lines)


def test_cli_output_to_a_file_has_no_carriage_returns(tmp_path):
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as f:
        subprocess.run([sys.executable, "-m", "recursia", "data", "generate", "maze", "--out", str(tmp_path / "m"),
                        "--count", "20", "--test-count", "5", "--min-path", "2"], stderr=f,
                       stdout=subprocess.PIPE, env=ENV, timeout=300, check=True)
    text = err.read_text()
    assert "\r" not in text
    lines = [line for line in text.splitlines() if line.startswith("generating mazes: ")]
    assert len(lines) == 1, text
    assert "(100%)" in lines[0]


def test_terminal_still_gets_the_tqdm_bar():
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    try:
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(interval=30)], stderr=slave,
                                stdout=subprocess.DEVNULL, env=ENV)
        os.close(slave)
        slave = -1
        chunks = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed its end of the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=60) == 0
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "\r" in text  # redrawn in place
    assert "work: 100%|" in text and "400/400 [" in text and "job/s" in text
