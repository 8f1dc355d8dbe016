"""Plain values across the sandbox wall: what a candidate's function returned, as text the trusted side can
read without trusting it.

The sandbox never judges. It runs the candidate on a test's inputs and sends back the values it got, encoded
here; the parent decodes them with `decode` and compares them with expected values the sandbox never saw. So
the encoding admits a closed set of types only (None, bool, int, float, complex, str, bytes, and lists,
tuples, dicts, sets and frozensets of them), exact types only (a subclass could carry its own `__eq__`), with
limits on depth and size, and no pickle: a forged message is at worst a claim about outputs.

The format is JSON (ASCII): None, bool, str and small ints as themselves, floats as numbers, everything else as an
array whose first item is a tag: ["l", ...] list, ["t", ...] tuple, ["s", ...] set, ["f", ...] frozenset,
["d", k1, v1, k2, v2, ...] dict, ["i", "-1f"] big int in hex, ["x", "nan" | "inf" | "-inf"] special float,
["c", re, im] complex, ["b", "00ff"] bytes, ["r", start, stop, step] range, ["o", "Match", true] any other
object, as an `Opaque` stand-in that knows its type's name and truth value and equals nothing but itself (so
`assert f(x)` and `f(x) is not None` hold as in Python, and no `__eq__` of the program's ever runs), ["g", ...] an iterator (a generator,
map, zip, ...), read to its end in the sandbox and rebuilt as an iterator over those items, so that
`list(f(x)) == [...]` holds as it would in Python while `f(x) == [...]` stays false.

This file is also imported by the sandbox's harness, inside the sandbox: it imports nothing but the standard
library.
"""

import math

from _json import encode_basestring_ascii as _quote  # C; `json` itself is imported only to decode

MAX_DEPTH = 64
MAX_ITEMS = 4_000_000        # containers and leaves in one value (HumanEval/100 returns a million ints)
BIG = 1 << 62                # ints at least this large travel as hex ("i"), which has no digit limit
COLLISION_CHECK = 64         # containers with more items are checked for crafted hash collisions


class ValueRefused(ValueError):
    """The value is not a plain value, or is too deep or too large."""


class Opaque:
    """An object of a type outside the closed set, as the parent sees it: its type's name and whether it was
    true. It equals only itself, hashes by identity, and is never None."""

    __slots__ = ("type_name", "truth")

    def __init__(self, type_name: str, truth: bool):
        self.type_name, self.truth = type_name, truth

    def __bool__(self) -> bool:
        return self.truth

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


# ---------------------------------------------------------------------------------------------------------
def encode(value, max_bytes: int = 1 << 22) -> str:
    """`value` as text, or ValueRefused saying why it is not a plain value. Written by hand over the C string
    quoter: the harness must not import `json`, whose `re` costs a candidate's start some 20 ms."""
    out: list = []
    _enc(value, 0, [0, 0, max_bytes], out)
    return "".join(out)


def _put(text: str, state: list, out: list) -> None:
    state[1] += len(text)
    if state[1] > state[2]:
        raise ValueRefused(f"the value is too large to report (more than {state[2]:,} bytes encoded)")
    out.append(text)


def _enc(v, depth, state, out) -> None:
    state[0] += 1
    if state[0] > MAX_ITEMS:
        raise ValueRefused(f"the value has more than {MAX_ITEMS:,} parts")
    if depth > MAX_DEPTH:
        raise ValueRefused(f"the value is nested more than {MAX_DEPTH} deep")
    t = type(v)
    if v is None:
        return _put("null", state, out)
    if t is bool:
        return _put("true" if v else "false", state, out)
    if t is str:
        return _put(_quote(v), state, out)
    if t is int:
        return _put(int.__repr__(v) if -BIG < v < BIG else '["i",' + _quote(format(v, "x")) + "]", state, out)
    if t is float:
        return _put(float.__repr__(v) if math.isfinite(v) else '["x",' + _quote(float.__repr__(v)) + "]",
                    state, out)
    if t is list or t is tuple or t is set or t is frozenset:
        return _seq({list: "l", tuple: "t", set: "s", frozenset: "f"}[t], v, depth, state, out)
    if t is dict:
        _put('["d"', state, out)
        for k, x in dict.items(v):
            _put(",", state, out)
            _enc(k, depth + 1, state, out)
            _put(",", state, out)
            _enc(x, depth + 1, state, out)
        return _put("]", state, out)
    if t is complex:
        return _seq("c", (v.real, v.imag), depth, state, out)
    if t is bytes:
        return _put('["b",' + _quote(v.hex()) + "]", state, out)
    if t in _dict_kinds():  # Counter, defaultdict, OrderedDict: compared as the dict they hold
        return _enc(dict(dict.items(v)), depth, state, out)
    if t is range:
        return _seq("r", (v.start, v.stop, v.step), depth, state, out)
    if hasattr(t, "__next__") and hasattr(t, "__iter__"):
        return _seq("g", v, depth, state, out)
    numpy_scalar = _numpy_scalar(v)
    if numpy_scalar is not None:
        return _enc(numpy_scalar, depth, state, out)
    _put('["o",' + _quote(_type_name(t)[:100]) + ("," + ("true" if bool(v) else "false")) + "]", state, out)


def _seq(tag: str, items, depth, state, out) -> None:
    _put('["' + tag + '"', state, out)
    for x in items:
        _put(",", state, out)
        _enc(x, depth + 1, state, out)
    _put("]", state, out)


def _dict_kinds() -> tuple:
    """The standard library's dict subclasses that honest solutions return. Their content travels as a plain
    dict (read with dict's own methods), so no __eq__ of theirs is ever used."""
    import collections

    return (collections.Counter, collections.defaultdict, collections.OrderedDict)


def _numpy_scalar(v):
    """numpy's scalars (np.int64, np.float64, np.bool_) as the Python scalar they hold: what a test comparing
    with == would see. Anything else of numpy, arrays included, is refused."""
    t = type(v)
    if getattr(t, "__module__", None) != "numpy" or not hasattr(v, "item") or hasattr(v, "shape") and v.shape:
        return None
    item = v.item()
    return item if type(item) in (bool, int, float, complex) else None


def _type_name(t) -> str:
    name = getattr(t, "__qualname__", None)
    return name if type(name) is str else "value of an unknown type"


# ---------------------------------------------------------------------------------------------------------
def decode(text, max_bytes: int = 1 << 22):
    """The plain value `text` encodes, built from fresh builtin objects. ValueRefused if `text` is anything
    but what `encode` writes (it may come from a forger)."""
    if type(text) is not str:
        raise ValueRefused("an encoded value must be a str")
    if len(text) > max_bytes:
        raise ValueRefused(f"an encoded value of {len(text):,} bytes is over the limit of {max_bytes:,}")
    import json

    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise ValueRefused(f"not an encoded value: {e}") from None
    return _dec(raw, 0, [0])


def _no_constant(name):
    raise ValueRefused(f"{name} is not how a value is encoded")


def _dec(v, depth, count):
    count[0] += 1
    if count[0] > MAX_ITEMS or depth > MAX_DEPTH:
        raise ValueRefused("the value is too large or too deep")
    t = type(v)
    if v is None or t is bool or t is str or t is float:
        return v
    if t is int:
        if not -BIG < v < BIG:
            raise ValueRefused("a big int must travel as hex")
        return v
    if t is not list or not v or type(v[0]) is not str:
        raise ValueRefused(f"unexpected JSON {t.__name__} in an encoded value")
    tag, items = v[0], v[1:]
    if tag in ("l", "t", "s", "f", "g"):
        parts = [_dec(x, depth + 1, count) for x in items]
        if tag == "l":
            return parts
        if tag == "g":
            return iter(parts)
        if tag == "t":
            return tuple(parts)
        _check_collisions(parts)
        try:
            return set(parts) if tag == "s" else frozenset(parts)
        except TypeError as e:
            raise ValueRefused(f"a set of unhashable items: {e}") from None
    if tag == "d":
        if len(items) % 2:
            raise ValueRefused("a dict needs key, value pairs")
        keys = [_dec(x, depth + 1, count) for x in items[0::2]]
        vals = [_dec(x, depth + 1, count) for x in items[1::2]]
        _check_collisions(keys)
        try:
            return dict(zip(keys, vals))
        except TypeError as e:
            raise ValueRefused(f"a dict with unhashable keys: {e}") from None
    if tag == "i" and len(items) == 1 and type(items[0]) is str:
        try:
            n = int(items[0], 16)
        except ValueError:
            raise ValueRefused("a big int in hex is malformed") from None
        if -BIG < n < BIG:
            raise ValueRefused("a small int must travel as a number")
        return n
    if tag == "r" and len(items) == 3 and all(type(x) is int and -BIG < x < BIG for x in items) and items[2]:
        return range(*items)
    if tag == "x" and items in (["nan"], ["inf"], ["-inf"]):
        return float(items[0])
    if tag == "c" and len(items) == 2 and all(type(x) in (int, float, list) for x in items):
        re_, im = (_dec(x, depth + 1, count) for x in items)
        if type(re_) is not float or type(im) is not float:
            raise ValueRefused("a complex needs two floats")
        return complex(re_, im)
    if tag == "o" and len(items) == 2 and type(items[0]) is str and type(items[1]) is bool:
        return Opaque(items[0][:100], items[1])
    if tag == "b" and len(items) == 1 and type(items[0]) is str:
        try:
            return bytes.fromhex(items[0])
        except ValueError:
            raise ValueRefused("bytes in hex are malformed") from None
    raise ValueRefused(f"unknown tag {tag[:10]!r} in an encoded value")


def _check_collisions(items: list) -> None:
    """Refuse many distinct items that share a hash (ints n and n + 2**61 - 1 do): building a set or dict of
    them, here or in a check such as set(out) == set(expected), would take quadratic time."""
    if len(items) <= COLLISION_CHECK:
        return
    buckets: dict = {}
    for x in items:
        try:
            h = hash(x)
        except TypeError:
            return  # unhashable: the set or dict itself will refuse it
        seen = buckets.setdefault(h, [])
        if len(seen) < 8 and not any(x == y for y in seen):
            seen.append(x)
        elif len(seen) >= 8 and not any(x == y for y in seen):
            raise ValueRefused("the value holds many distinct items with the same hash (crafted collisions)")


def check_collisions_deep(value, depth: int = 0) -> None:
    """`_check_collisions` for every list and tuple in a decoded value (sets and dicts were checked while
    being built): a check may turn any of them into a set."""
    if depth > MAX_DEPTH:
        return
    t = type(value)
    if t is list or t is tuple:
        _check_collisions(list(value))
        for x in value:
            if type(x) in (list, tuple, dict):
                check_collisions_deep(x, depth + 1)
    elif t is dict:
        for x in value.values():
            if type(x) in (list, tuple, dict):
                check_collisions_deep(x, depth + 1)


def short(value, limit: int = 200) -> str:
    """repr of a decoded value, cut to `limit` characters (for messages)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

