"""Progress bars that suit where they are going.

On a terminal, `bar(...)` is a plain tqdm bar. When the stream is not a terminal (a log file, a pipe, a CI job),
a redrawn bar would write a carriage-return update ten times a second, about 100 KB for a 2-minute training run.
There `bar(...)` writes plain lines instead, at most one every `interval` seconds (30 by default) plus a final
one when the bar closes, and never a carriage return:

    train: 1200/5000 (24%), 31.2 step/s, 0:38 elapsed, loss=0.123, exact=0.500

The object supports what the call sites use: iteration, `update`, `set_postfix`, `set_postfix_str`,
`set_description`, `refresh`, `close`, `write`, the context manager protocol and the `n`, `total` and `desc`
attributes.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Iterable, Iterator, Optional, TextIO

from tqdm import tqdm

INTERVAL_S = 30.0


def is_terminal(stream: Any) -> bool:
    """Whether `stream` is an interactive terminal (False for files, pipes, closed or fake streams)."""
    isatty = getattr(stream, "isatty", None)
    if isatty is None:
        return False
    try:
        return bool(isatty())
    except (ValueError, OSError):  # a closed or detached stream is no terminal
        return False


def bar(iterable: Optional[Iterable] = None, total: Optional[float] = None, desc: Optional[str] = None,
        disable: bool = False, file: Optional[TextIO] = None, interval: float = INTERVAL_S, **kw: Any):
    """A tqdm bar on a terminal, else a `LineProgress` that writes a plain line every `interval` seconds.

    Takes tqdm's arguments; those that only matter for a redrawn bar (`leave`, `dynamic_ncols`, `ncols`,
    `mininterval`, ...) are ignored off a terminal. `file` defaults to stderr, as for tqdm.
    """
    stream = sys.stderr if file is None else file
    if is_terminal(stream):
        return tqdm(iterable, total=total, desc=desc, disable=disable, file=file, **kw)
    return LineProgress(iterable, total=total, desc=desc, disable=disable, file=file, interval=interval,
                        unit=kw.get("unit", "it"), initial=kw.get("initial", 0), postfix=kw.get("postfix"))


def write(message: str, file: Optional[TextIO] = None) -> None:
    """Print a line without breaking a bar on the terminal (tqdm.write), or as a plain line elsewhere."""
    stream = sys.stderr if file is None else file
    if is_terminal(stream):
        tqdm.write(message, file=file)
    else:
        stream.write(message + "\n")
        stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _number(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) and not x.is_integer() else str(int(x))


class LineProgress:
    """The non-terminal stand-in for tqdm: a line at most every `interval` seconds and one at `close`."""

    def __init__(self, iterable: Optional[Iterable] = None, total: Optional[float] = None,
                 desc: Optional[str] = None, disable: bool = False, file: Optional[TextIO] = None,
                 interval: float = INTERVAL_S, unit: str = "it", initial: float = 0, postfix: Any = None):
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except (TypeError, AttributeError):  # a generator has no length: the lines then show the count only
                total = None
        self.iterable = iterable
        self.total = total
        self.desc = desc or ""
        self.disable = disable
        self.file = file
        self.interval = interval
        self.unit = unit
        self.n = initial
        self.initial = initial
        self.postfix = ""
        self.closed = False
        self.lines = 0  # lines written so far
        self.start = self.last_print = time.monotonic()
        self._printed_n: Optional[float] = None
        if isinstance(postfix, dict):
            self.set_postfix(postfix, refresh=False)
        elif postfix is not None:
            self.postfix = str(postfix)

    # -- what tqdm call sites use ------------------------------------------------------------------------
    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("this progress bar was made without an iterable")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        if self.total is None:
            raise TypeError("this progress bar has no total")
        return int(self.total)

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        if self.closed:
            return
        self.n += n
        if not self.disable and time.monotonic() - self.last_print >= self.interval:
            self._print()

    def set_postfix(self, ordered_dict: Optional[dict] = None, refresh: bool = True, **kwargs: Any) -> None:
        items = dict(ordered_dict or {})
        items.update(kwargs)
        self.postfix = ", ".join(f"{k}={format(v, '.4g') if isinstance(v, float) else v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_description(self, desc: Optional[str] = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def set_description_str(self, desc: Optional[str] = None, refresh: bool = True) -> None:
        self.set_description(desc)

    def refresh(self) -> None:
        """Nothing to redraw: lines are written by `update` and `close` only."""

    def write(self, message: str, file: Optional[TextIO] = None, end: str = "\n") -> None:
        stream = file or self.file or sys.stderr
        stream.write(message + end)
        stream.flush()

    def close(self) -> None:
        """Write the final line (unless the last line already showed this count), once."""
        if self.closed:
            return
        self.closed = True
        if not self.disable and self._printed_n != self.n:
            self._print()

    # -- the line ------------------------------------------------------------------------------------------
    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        parts = []
        if self.total:
            parts.append(f"{_number(self.n)}/{_number(self.total)} ({100 * self.n / self.total:.0f}%)")
        else:
            parts.append(f"{_number(self.n)} {self.unit}")
        done = self.n - self.initial
        if elapsed > 0 and done > 0:
            rate = done / elapsed
            parts.append(f"{rate:.3g} {self.unit}/s" if rate >= 1 else f"{1 / rate:.3g} s/{self.unit}")
        parts.append(f"{_clock(elapsed)} elapsed")
        if self.total and done > 0 and self.n < self.total:
            parts.append(f"{_clock((self.total - self.n) * elapsed / done)} left")
        if self.postfix:
            parts.append(self.postfix)
        text = ", ".join(parts)
        return f"{self.desc}: {text}" if self.desc else text

    def _print(self) -> None:
        stream = self.file or sys.stderr
        stream.write(self.line() + "\n")
        stream.flush()
        self.lines += 1
        self._printed_n = self.n
        self.last_print = time.monotonic()
