"""The candidate's side of the sandbox (see sandbox.py): a fresh interpreter, already isolated and limited by
_runner.py, that runs the program once and then each test, and reports on fd 3 the values the tests' leaves
took (values.py), never a verdict: the parent compares them with expected values this process never sees
(iotest.py). So nothing here has to be believed; what follows keeps honest programs' reports intact and makes
forging them pointless or visible:

- the records carry a 128-bit nonce that exists only in this function's locals; the parent treats any other
  line on the pipe, a duplicate or out-of-order record, or a missing final record as tampering, and fails the
  whole sample;
- an audit hook, installed before the candidate runs (and impossible to remove), refuses the usual ways to
  reach those locals: frames (sys._getframe, tracebacks' tb_frame, generators' gi_frame, settrace,
  setprofile, sys._current_frames), the garbage collector's object lists (and DEBUG_SAVEALL), ctypes, new audit
  hooks and /proc; Python signal handlers, which receive the current frame, are installed behind a trampoline
  that passes None; the private `_imp` loaders are guarded so that none of these modules can be re-created;
- each test runs in a fresh copy of the program's namespace with a pristine copy of the builtins taken before
  the candidate ran; the attributes of modules loaded before the candidate are restored before each test;
- any BaseException of a test (SystemExit, KeyboardInterrupt, ...) is that test's error; a leaf's exception is
  reported as that leaf's, so a check such as `x is None or f(x) > 0` keeps Python's short-circuit meaning;
  os._exit or a crash leaves the final record missing; a process forked by the candidate never reports (the
  pid is checked before every record).
Imports nothing of recursia: values.py arrives compiled, with the job.
"""

import marshal
import os
import sys


def _main():  # noqa: C901 - one function on purpose: its locals are what the candidate must not reach
    import _functools
    import _imp
    import gc
    import _signal
    import _thread
    import builtins

    data = b""
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            break
        data += chunk
    program, tests, setup, nonce, fd, preload, paths, codec_code, max_value = marshal.loads(data)
    del data
    sys.path.extend(paths)  # site-packages, without running their .pth files (-S: a faster start)
    codec = type(sys)("_recursia_values")  # values.py, compiled by the parent: the candidate cannot replace it
    exec(marshal.loads(codec_code), codec.__dict__)
    import _json  # the C string quoter alone: `json` would import `re`, some 20 ms of every start
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for name in preload:
        __import__(name)
    import _sitebuiltins  # exit() and quit(), which `site` would define (the interpreter starts with -S)

    builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
    builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")

    # ---- everything used after the candidate's code starts, bound now --------------------------------------
    _write, _getpid, _exit, _exec, _compile = os.write, os.getpid, os._exit, exec, compile
    _encode, _ValueRefused, _loads = codec.encode, codec.ValueRefused, marshal.loads
    _json_str, _int_repr, _str_join, _tuple = _json.encode_basestring_ascii, int.__repr__, str.join, tuple
    _type, _str, _len, _dict, _slice, _list = type, str, len, dict, slice, list
    _range, _enumerate, _isinstance, _int = range, enumerate, isinstance, int
    _BaseException, _SyntaxError = BaseException, SyntaxError
    _RuntimeError, _ValueError, _ImportError, _AttributeError = RuntimeError, ValueError, ImportError, AttributeError
    _PermissionError, _bytes, _memoryview = PermissionError, bytes, memoryview
    _str_getitem, _str_encode, _str_startswith = str.__getitem__, str.encode, str.startswith
    _str_splitlines, _str_strip, _str_partition = str.splitlines, str.strip, str.partition
    _getattr, _type_name = getattr, type.__dict__["__name__"].__get__
    _get_tb = BaseException.__dict__["__traceback__"].__get__
    _get_ident, _partial = _thread.get_ident, _functools.partial
    _setrecursionlimit, recursion_limit = sys.setrecursionlimit, sys.getrecursionlimit()
    _NS = _type(sys.implementation)  # types.SimpleNamespace, a C type
    _sys_modules = sys.modules
    me = _getpid()
    prefix = _str_encode("\n" + nonce + " ")
    del nonce

    def as_json(x):
        """JSON of a record (str, int, bool, None and lists of them) from bound C functions only: whatever the
        program patched (json, builtins), the records stay well-formed."""
        t = _type(x)
        if t is _str:
            return _json_str(x)
        if x is None:
            return "null"
        if x is True or x is False:
            return "true" if x else "false"
        if t is _int:
            return _int_repr(x)
        if t is _list or t is _tuple:
            return "[" + _str_join(",", [as_json(y) for y in x]) + "]"
        return "null"  # not reached: records hold nothing else

    def emit(record):
        if _getpid() != me:  # a copy forked by the candidate: it never reports
            _exit(0)
        data = _memoryview(prefix + _str_encode(as_json(record), "utf-8", "replace") + b"\n")
        while data:  # a pipe write can be cut short by a signal: finish it
            data = data[_write(fd, data):]

    def text(value, limit):
        """An exact str of at most `limit` characters, whatever the candidate's object does."""
        if not _isinstance(value, _str):
            return None
        value = _str_getitem(value, _slice(0, limit))
        return value if _type(value) is _str else None

    # ---- the audit hook and the guarded loaders ------------------------------------------------------------
    gate = [False]
    main_thread = _get_ident()
    frame_attrs = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame"})
    denied = frozenset({"sys._current_frames", "sys._current_exceptions", "sys.settrace", "sys.setprofile",
                        "sys.addaudithook", "gc.get_objects", "gc.get_referrers", "gc.get_referents"})
    no_import = frozenset({"ctypes", "_ctypes", "_testcapi", "_testinternalcapi", "_testbuffer",
                           "_testmultiphase", "_testsinglephase", "_testimportmultiple", "_testclinic",
                           "_xxsubinterpreters", "_xxinterpchannels", "_xxtestfuzz"})
    no_create = no_import | {"_signal", "_imp", "gc"}  # fresh copies of these would not be guarded

    def is_blocked(name, names):
        if _type(name) is not _str:
            return True
        return _str_partition(name, ".")[0] in names or name.rpartition(".")[2] in names

    def hook(event, args):
        if event == "object.__getattr__":
            if args[1] in frame_attrs and not (gate[0] and _get_ident() == main_thread):
                raise _AttributeError(f"{args[1]} is not available in the sandbox")
        elif event == "import":
            if is_blocked(args[0], no_import):
                raise _ImportError(f"module {args[0]} is not available in the sandbox")
        elif event == "sys._getframe":
            raise _ValueError("call stack is not accessible in the sandbox")
        elif event in denied or _str_startswith(event, "ctypes."):
            raise _RuntimeError(f"{event} is not available in the sandbox")
        elif event == "open":
            path = args[0]
            if _isinstance(path, _bytes):
                path = path.decode("utf-8", "replace")
            if _isinstance(path, _str) and _str_startswith(path, "/proc"):
                raise _PermissionError(f"{path} is not available in the sandbox")

    def keep(original, check):
        """`original` behind `check`: the original is held by a generator (whose frame is unreachable), which
        hands out a one-use partial for the checked arguments."""
        def keeper():
            request = yield None
            while True:
                try:
                    out = (True, _partial(original, *check(*request)))
                except _BaseException as e:
                    out = (False, e)
                request = yield out
        gen = keeper()
        gen.send(None)

        def guarded(*args):
            ok, value = gen.send(args)
            if ok:
                return value()
            raise value
        return guarded

    def module_spec(spec, *rest):
        name, origin = spec.name, _getattr(spec, "origin", None)
        if (_type(name) is not _str or (origin is not None and _type(origin) is not _str)
                or is_blocked(name, no_create)
                or (origin is not None and is_blocked(_str_partition(origin.rpartition("/")[2], ".")[0],
                                                      no_create))):
            raise _ImportError("this module is not available in the sandbox")
        return (_NS(name=name, origin=origin),) + rest

    def debug_flags(flags):
        if _type(flags) is not _int or flags & 32:  # gc.DEBUG_SAVEALL would keep frames in gc.garbage
            raise _RuntimeError("gc.DEBUG_SAVEALL is not available in the sandbox")
        return (flags,)

    default_int_handler, _callable = _signal.default_int_handler, callable
    trampolines = {}

    def signal_args(signalnum, handler):
        """A Python handler is called with the current frame, which would lead to the harness: it is installed
        behind a trampoline that passes None instead."""
        if _type(signalnum) is not _int:
            raise _RuntimeError("signal numbers must be ints in the sandbox")
        if _type(handler) is _int or handler is default_int_handler:
            return (signalnum, handler)
        if not _callable(handler):
            raise _RuntimeError("a signal handler must be callable")

        def trampoline(signum, frame, _handler=handler):
            return _handler(signum, None)
        trampolines[trampoline] = handler
        return (signalnum, trampoline)

    def original(handler):
        return trampolines.get(handler, handler) if _type(handler) is _type(original) else handler

    _imp.create_builtin = keep(_imp.create_builtin, module_spec)
    _imp.create_dynamic = keep(_imp.create_dynamic, module_spec)
    set_signal, get_signal = keep(_signal.signal, signal_args), _signal.getsignal
    _signal.signal = lambda signalnum, handler: original(set_signal(signalnum, handler))
    _signal.getsignal = lambda signalnum: original(get_signal(signalnum))
    gc.set_debug = keep(gc.set_debug, debug_flags)
    for name in _list(_sys_modules):
        if is_blocked(name, no_import):
            del _sys_modules[name]
    sys.addaudithook(hook)

    # ---- the namespaces ------------------------------------------------------------------------------------
    pristine = _dict(builtins.__dict__)
    saved_modules = [(m.__dict__, _dict(m.__dict__)) for m in _list(_sys_modules.values())
                     if m is not None and _type(getattr(m, "__dict__", None)) is _dict]
    missing = object()

    def restore_modules():
        for current, saved in saved_modules:
            for key, value in saved.items():
                if current.get(key, missing) is not value:
                    current[key] = value
            if _len(current) != _len(saved):
                for key in _list(current):
                    if key not in saved:
                        del current[key]

    sources = {"<program>": program, "<setup>": setup}
    for i, t in _enumerate(tests):
        sources[f"<test {i}>"] = t[0]
    lines = {name: _str_splitlines(src) for name, src in sources.items()}

    def where(e):
        """(source line text, line number, which part) of the innermost frame in our code, else Nones."""
        found = (None, None, None)
        try:
            tb = _get_tb(e)
            gate[0] = True
            while tb is not None:
                filename, lineno = tb.tb_frame.f_code.co_filename, tb.tb_lineno
                if _type(filename) is _str and filename in lines and _type(lineno) is _int:
                    found = (filename, lineno)
                tb = tb.tb_next
        finally:
            gate[0] = False
        if found[0] is None:
            return found
        filename, lineno = found
        src = lines[filename]
        line = _str_strip(src[lineno - 1]) if 0 < lineno <= _len(src) else None
        part = "program" if filename == "<program>" else "setup" if filename == "<setup>" else "test"
        return (text(line, 300), lineno, part)

    def describe(e):
        """(type name, message, line, line number, part) of an exception, never running into the candidate's
        code unguarded."""
        etype = text(_type_name(_type(e)), 100) or "?"
        try:
            message = text(_str(e), 500)
        except _BaseException:
            message = "<the exception's message could not be read>"
        try:
            line, lineno, part = where(e)
        except _BaseException:
            line = lineno = part = None
        return (etype, message, line, lineno, part)

    def compiled(name):
        return _compile(sources[name], name, "exec", dont_inherit=True)

    # ---- compile everything before any of the candidate's code runs -----------------------------------------
    emit(("start",))
    try:
        program_code = compiled("<program>")
    except (_SyntaxError, _ValueError) as e:
        msg = text(getattr(e, "msg", None) or _str(e), 500)
        line = text(_str_strip(e.text or ""), 300) if _isinstance(e, _SyntaxError) else None
        emit(("prog", "syntax_error", _type_name(_type(e)), msg, line, getattr(e, "lineno", None), "program"))
        emit(("end", _len(tests)))
        _exit(0)
    test_codes, test_args, setup_code = [], [], None
    for i in _range(_len(tests)):
        try:
            test_codes.append(compiled(f"<test {i}>"))
        except (_SyntaxError, _ValueError) as e:
            test_codes.append(e)
        test_args.append(tests[i][1:])
    del tests
    if setup:
        try:
            setup_code = compiled("<setup>")
        except (_SyntaxError, _ValueError) as e:
            setup_code = e

    module = type(sys)("__candidate__")
    namespace = module.__dict__
    namespace["__builtins__"] = _dict(pristine)
    _sys_modules["__candidate__"] = module

    # ---- the candidate's program ---------------------------------------------------------------------------
    try:
        _exec(program_code, namespace)
    except _BaseException as e:
        emit(("prog", "program_error") + describe(e))
        e = None
        emit(("end", _len(test_codes)))
        _exit(0)
    restore_modules()  # what the program patched (builtins included) must not break the records below
    emit(("prog", "ok", None, None, None, None, None))
    program_namespace = _dict(namespace)

    # ---- the tests: each reports the values its leaves took, never a verdict -------------------------------
    def capture_into(captures):
        def capture(j, *thunks):
            got = []
            for thunk in thunks:
                try:
                    value = thunk()
                except _BaseException as e:
                    got.append(("e",) + describe(e))
                    e = None
                    continue
                try:
                    got.append(("v", _encode(value, max_value)))
                except _ValueRefused as e:
                    got.append(("e", "ValueRefused", text(_str(e), 300), None, None, None))
                except _BaseException as e:  # a value whose traversal raised (e.g. a dict changed meanwhile)
                    got.append(("e",) + describe(e))
                    e = None  # the traceback would keep this frame (and so the harness) reachable
            captures.append((j, got))
        return capture

    shared = None
    for i in _range(_len(test_codes)):
        code = test_codes[i]
        emit(("begin", i))
        if _isinstance(code, _BaseException):
            msg = text(_getattr(code, "msg", None) or _str(code), 500)
            line = text(_str_strip(_getattr(code, "text", None) or ""), 300)
            emit(("test", i, "error", _type_name(_type(code)), msg, line, _getattr(code, "lineno", None), "test",
                  []))
            continue
        captures = []
        args, fresh = test_args[i]
        try:
            _setrecursionlimit(recursion_limit)
            if fresh or shared is None:  # input-only tests share one namespace, as EvalPlus runs its inputs
                restore_modules()
                test_namespace = _dict(program_namespace)
                test_namespace["__builtins__"] = _dict(pristine)
                shared = None if fresh else test_namespace
            else:
                test_namespace = shared
            test_namespace["_recursia_capture"] = capture_into(captures)
            if args is not None:
                test_namespace["_recursia_args"] = _loads(args)  # from the parent: plain values, fresh
            if setup_code is not None:
                if _isinstance(setup_code, _BaseException):
                    raise setup_code
                _exec(setup_code, test_namespace)
            _exec(code, test_namespace)
        except _BaseException as e:
            record = ("test", i, "error") + describe(e) + (captures,)
            e = None
        else:
            record = ("test", i, "ok", captures)
        test_namespace = None
        emit(record)
    emit(("end", _len(test_codes)))
    _exit(0)


def _run(_exit=os._exit):
    try:
        _main()
    finally:
        _exit(70)  # never fall back into the interpreter's shutdown (atexit, finalizers) after the records


if __name__ == "__main__":
    _run()
