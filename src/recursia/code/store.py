"""The attempt store: every step of every `recursia code eval` run in one SQLite file, so that statistics,
depth per task type and the skill library are learned from all attempts ever made, not from one run.

Why SQLite: one file, transactions, and several writers at once. The store runs in WAL mode with a busy
timeout, and each record goes in with one `BEGIN IMMEDIATE ... COMMIT`, so a process killed at any moment
leaves either the whole record or nothing, and concurrent writers wait for each other instead of failing.

Schema (version 2; `schema_version` lists the migrations applied, see `MIGRATIONS`):

    runs      run_id, run_key (unique: run label + config hash), label, bench, split, protocol, backend,
              model, depth, halt, config (JSON), created
    tasks     benchmark, task_id (together unique), split (of the task: MBPP by number), entry_point, prompt,
              features (JSON: topic, length, mentions, visible)
    records   record_id, run_id, benchmark, task_id, sample (unique per run), split, task_type, first_signature,
              steps (attempts made), halt_depth, halt_reason, calls, prompt_tokens, completion_tokens,
              seconds, final_visible_ok, hidden_final, baseline (JSON or NULL), added
    steps     record_id, depth, program_sha, program, signature, visible_passed, visible_total,
              visible_results (JSON list of booleans), error (the first failing test's message), calls
              (cumulative, as the loop counts them), exec_seconds, diagnosis (z's summary)
    outcomes  record_id, depth (0..K), submitted (the step submitted at that depth: best so far), hidden

Version 1 had no `tasks` table, no `model` column and no task type; migration 1 -> 2 adds them and derives
types from what version 1 kept (benchmark and first signature; the topic is `*` until a task is re-added).
A new store is created at version 1 and migrated, so every store has gone through the same migrations.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

from ..errors import RecursiaError
from .tasks import BENCHMARKS
from .tasktypes import ANY, first_class, task_features, task_split, type_key

CURRENT = 2
BUSY_MS = 60_000


class StoreError(RecursiaError):
    """An attempt store that cannot be opened, is of an unknown version, or a record that does not fit it."""


SCHEMA_V1 = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied TEXT NOT NULL);
CREATE TABLE runs (run_id INTEGER PRIMARY KEY, run_key TEXT NOT NULL UNIQUE, label TEXT, bench TEXT NOT NULL,
    split TEXT, protocol TEXT, backend TEXT, depth INTEGER, halt TEXT, config TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE records (record_id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(run_id),
    benchmark TEXT NOT NULL, task_id TEXT NOT NULL, sample INTEGER NOT NULL, split TEXT NOT NULL,
    first_signature TEXT, steps INTEGER NOT NULL, halt_depth INTEGER NOT NULL, halt_reason TEXT NOT NULL,
    calls INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
    seconds REAL NOT NULL, final_visible_ok INTEGER NOT NULL, hidden_final INTEGER NOT NULL, baseline TEXT,
    added TEXT NOT NULL, UNIQUE (run_id, task_id, sample));
CREATE TABLE steps (record_id INTEGER NOT NULL REFERENCES records(record_id), depth INTEGER NOT NULL,
    program_sha TEXT, program TEXT, signature TEXT NOT NULL, visible_passed INTEGER NOT NULL,
    visible_total INTEGER NOT NULL, visible_results TEXT NOT NULL, error TEXT, calls INTEGER NOT NULL,
    exec_seconds REAL, diagnosis TEXT, PRIMARY KEY (record_id, depth));
CREATE TABLE outcomes (record_id INTEGER NOT NULL REFERENCES records(record_id), depth INTEGER NOT NULL,
    submitted INTEGER NOT NULL, hidden INTEGER NOT NULL, PRIMARY KEY (record_id, depth));
CREATE INDEX records_by_task ON records (benchmark, task_id);
"""


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE runs ADD COLUMN model TEXT")
    db.execute("ALTER TABLE records ADD COLUMN task_type TEXT")
    db.execute("CREATE TABLE tasks (benchmark TEXT NOT NULL, task_id TEXT NOT NULL, split TEXT NOT NULL, "
               "entry_point TEXT, prompt TEXT, features TEXT NOT NULL, PRIMARY KEY (benchmark, task_id))")
    db.execute("CREATE INDEX records_by_type ON records (task_type)")
    for run_id, backend in db.execute("SELECT run_id, backend FROM runs").fetchall():
        kind, model = _backend_model(backend)
        db.execute("UPDATE runs SET backend = ?, model = ? WHERE run_id = ?", (kind, model, run_id))
    rows = db.execute("SELECT record_id, benchmark, first_signature FROM records").fetchall()
    for record_id, bench, sig in rows:
        db.execute("UPDATE records SET task_type = ? WHERE record_id = ?",
                   (type_key(bench, first_class(sig), ANY), record_id))


MIGRATIONS = {1: _migrate_1_to_2}  # version v -> v + 1


def _backend_model(name: str | None) -> tuple[str | None, str | None]:
    """'gguf:Gemma 3 270m' -> ('gguf', 'Gemma 3 270m'); 'openai:m@http://..' -> ('openai', 'm')."""
    if not name or ":" not in name:
        return name, None
    kind, model = name.split(":", 1)
    return kind, model.split("@", 1)[0] if kind == "openai" else model


def bench_name(config: dict) -> str:
    bench = config["bench"]
    return bench if bench in BENCHMARKS else Path(bench).stem


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _check_record(record: dict) -> None:
    from .evaluate import _shape_problem

    why = _shape_problem(record, full=True)
    if why:
        raise StoreError(f"not a `recursia code eval` record ({why}); pass one line of a run's records.jsonl")


def _explain(e: sqlite3.DatabaseError) -> str:
    """SQLite's error, with what it means for the user: damage, a read-only place, a full disk."""
    text = str(e)
    if "full" in text:
        return f"{text}: the disk is full; free space"
    if "readonly" in text or "read-only" in text or "unable to open" in text or "disk I/O" in text:
        return f"{text}: the file or its folder cannot be written; pass a store path in a writable folder"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return f"{text}: the file is damaged or not an attempt store; restore it or pick a new store path"
    return text


def _value_problems(db: sqlite3.Connection) -> list[str]:
    """Rows whose numbers are not numbers or whose flags are not 0/1 (what a damaged page can leave)."""
    checks = {
        "records": "typeof(sample) != 'integer' OR typeof(steps) != 'integer' OR typeof(halt_depth) != 'integer' "
                   "OR typeof(calls) != 'integer' OR final_visible_ok NOT IN (0, 1) OR hidden_final NOT IN (0, 1)",
        "outcomes": "typeof(depth) != 'integer' OR typeof(submitted) != 'integer' OR hidden NOT IN (0, 1)",
        "steps": "typeof(depth) != 'integer' OR typeof(visible_passed) != 'integer' "
                 "OR typeof(visible_total) != 'integer'"}
    out = []
    for table, where in checks.items():
        n = db.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]
        if n:
            out.append(f"{n} row(s) of {table} hold values of the wrong type")
    return out


_EXPECTED: dict | None = None


def _columns(db: sqlite3.Connection) -> dict[str, list[str]]:
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {t: [c[1] for c in db.execute(f"PRAGMA table_info('{t}')")] for t in tables}


def _schema_problems(db: sqlite3.Connection) -> list[str]:
    """Tables or columns that differ from a store made by this recursia (version CURRENT)."""
    global _EXPECTED
    if _EXPECTED is None:
        fresh = sqlite3.connect(":memory:", isolation_level=None)
        for stmt in SCHEMA_V1.strip().split(";"):
            if stmt.strip():
                fresh.execute(stmt)
        for v in range(1, CURRENT):
            MIGRATIONS[v](fresh)
        _EXPECTED = _columns(fresh)
        fresh.close()
    have = _columns(db)
    return [f"table {t}: columns {have.get(t)} instead of {cols}" if t in have else f"table {t} is missing"
            for t, cols in _EXPECTED.items() if have.get(t) != cols]


class Store:
    """One store file. Opening creates or migrates it; `add_record` ingests one finished record atomically."""

    def __init__(self, path: str | Path, create: bool = True):
        """`create=False` (the commands that only read a store): a file without the schema is refused instead
        of being made into an empty store."""
        self.path, self.create = Path(path), create
        self.not_scored = 0  # records left out by the last import_run (the backend failed on every call)
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"store {self.path} is not a file; pass a path like runs/attempts.sqlite")
        if not create and (not self.path.exists() or self.path.stat().st_size == 0):
            raise StoreError(f"{self.path} is not an attempt store ({'empty' if self.path.exists() else 'no such file'})"
                             f"; fill one with `recursia code store import RUN --store {self.path}`")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the folder of store {self.path} ({e.strerror or e}); pass a store "
                             "path in a writable folder") from None
        self.db = None
        try:
            self.db = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None)
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
            self._wal()
            self.db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, never inconsistent
            self.db.execute("PRAGMA foreign_keys = ON")
            self._open()
        except (sqlite3.DatabaseError, StoreError) as e:
            if self.db is not None:
                self.db.close()
            if isinstance(e, StoreError):
                raise
            raise StoreError(f"store {self.path} cannot be opened: {_explain(e)}") from None

    def _wal(self) -> None:
        """Switch to WAL. Changing the journal mode needs the file to itself and does not wait on the busy
        timeout, so several processes opening a new store at once retry it until that timeout."""
        import time

        deadline = time.monotonic() + BUSY_MS / 1000
        while True:
            try:
                self.db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    # -- schema ----------------------------------------------------------------------------------------
    def _open(self) -> None:
        # A damaged store must be refused when it is opened, not read silently (nor misread: a damaged
        # schema_version page once read as "version 31, upgrade recursia"): first every page and index
        # (integrity_check), after the migrations the tables and columns of this schema version and the types
        # of the values. (Records with incomplete steps are what `integrity()` reports; a store may hold them.)
        self._refuse_damage([" ".join(str(r[0]).replace("*** in database main ***", "").split())
                             for r in self.db.execute("PRAGMA integrity_check") if r[0] != "ok"])
        with self.transaction() as db:
            have = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone()
            if not have:
                if not self.create:
                    raise StoreError(f"{self.path} is not an attempt store (it holds no tables); fill one with "
                                     f"`recursia code store import RUN --store {self.path}`")
                if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise StoreError(f"{self.path} is an SQLite file but not an attempt store (no schema_version)"
                                     "; pick a new store path")
                for stmt in SCHEMA_V1.strip().split(";"):
                    if stmt.strip():
                        db.execute(stmt)
                db.execute("INSERT INTO schema_version VALUES (1, ?)", (_now(),))
            version = self.version
            if version > CURRENT:
                raise StoreError(f"store {self.path} has schema version {version}, newer than this recursia "
                                 f"({CURRENT}); upgrade recursia")
            while version < CURRENT:
                MIGRATIONS[version](db)
                version += 1
                db.execute("INSERT INTO schema_version VALUES (?, ?)", (version, _now()))
        self._refuse_damage(_schema_problems(self.db) or _value_problems(self.db))

    def _refuse_damage(self, problems: list[str]) -> None:
        if problems:
            raise StoreError(f"store {self.path} is damaged ({'; '.join(problems[:3])}"
                             f"{f'; {len(problems) - 3} more' if len(problems) > 3 else ''}); restore it from a "
                             "copy or rebuild it with `recursia code store import RUN... --store NEW`")

    @property
    def version(self) -> int:
        return self.db.execute("SELECT max(version) FROM schema_version").fetchone()[0]

    def transaction(self):
        return _Transaction(self.db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------------------
    def add_task(self, task, db: sqlite3.Connection | None = None) -> None:
        """Remember a task's prompt and features (types and skills need them); re-adding updates them."""
        feats = task_features(task)
        (db or self.db).execute(
            "INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (benchmark, task_id) DO UPDATE SET "
            "split = excluded.split, entry_point = excluded.entry_point, prompt = excluded.prompt, "
            "features = excluded.features",
            (task.benchmark, task.task_id, task_split(task.benchmark, task.task_id), task.entry_point,
             task.prompt, json.dumps(feats)))

    def _run_id(self, db, config: dict, label: str | None) -> int:
        canon = json.dumps(config, sort_keys=True)
        key = hashlib.sha256(f"{label or ''}\n{canon}".encode()).hexdigest()[:24]
        row = db.execute("SELECT run_id FROM runs WHERE run_key = ?", (key,)).fetchone()
        if row:
            return row[0]
        kind, model = _backend_model(config.get("backend"))
        return db.execute(
            "INSERT INTO runs (run_key, label, bench, split, protocol, backend, model, depth, halt, config, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, label, bench_name(config), config.get("split"), config.get("protocol"), kind,
             config.get("model") or model, config.get("depth"), config.get("halt"), canon, _now())).lastrowid

    def add_record(self, run_config: dict, record: dict, task=None, run: str | None = None) -> bool:
        """Ingest one finished record (a line of records.jsonl) and all its steps in one transaction.

        `run_config` is the run's config.json; `run` labels the run (its directory: then `store import` of
        the same directory adds nothing); `task` (the `CodeTask`) gives the prompt features of the type, else
        the ones stored for that task are used (topic `*` if none). Returns False if it was already there."""
        _check_record(record)
        if record.get("backend_failed"):
            raise StoreError(f"the record of {record['task_id']} is not a result (every model call failed); "
                             "it is not stored")
        try:
            return self._add_record(run_config, record, task, run)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"store {self.path}: cannot add the record of {record['task_id']!r}: "
                             f"{_explain(e)}") from None

    def _add_record(self, run_config: dict, record: dict, task, run: str | None) -> bool:
        bench = bench_name(run_config)
        loop, attempts = record["loop"], record["loop"]["attempts"]
        with self.transaction() as db:
            run_id = self._run_id(db, run_config, run)
            if db.execute("SELECT 1 FROM records WHERE run_id = ? AND task_id = ? AND sample = ?",
                          (run_id, record["task_id"], record["sample"])).fetchone():
                return False
            if task is not None:
                self.add_task(task, db)
            row = db.execute("SELECT features FROM tasks WHERE benchmark = ? AND task_id = ?",
                             (bench, record["task_id"])).fetchone()
            topic = json.loads(row[0])["topic"] if row else ANY
            first = attempts[0]["signature"] if attempts else None
            hidden = record["hidden_by_depth"]
            rid = db.execute(
                "INSERT INTO records (run_id, benchmark, task_id, sample, split, first_signature, steps, halt_depth,"
                " halt_reason, calls, prompt_tokens, completion_tokens, seconds, final_visible_ok, hidden_final,"
                " baseline, added, task_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, bench, record["task_id"], record["sample"],
                 task_split(bench, record["task_id"], run_config.get("split")), first, len(attempts),
                 len(attempts) - 1, loop["halt_reason"], loop["calls"], loop["prompt_tokens"],
                 loop["completion_tokens"], record["seconds"], int(bool(record.get("final_visible_ok"))),
                 int(bool(hidden[-1])), json.dumps(record["baseline"]) if "baseline" in record else None, _now(),
                 type_key(bench, first_class(first), topic))).lastrowid
            for a in attempts:
                res = a.get("result") or {}
                tests = res.get("tests") or []
                failing = next((t for t in tests if not t.get("passed")), None)
                error = (failing or {}).get("message") or res.get("message")
                db.execute("INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (rid, a["depth"], a.get("sha"), a.get("program"), a["signature"], a["visible_passed"],
                            a["visible_total"], json.dumps([bool(t.get("passed")) for t in tests]), error,
                            a.get("calls", 0), res.get("seconds"), a.get("diagnosis", "")))
            best = loop.get("best") or [0] * len(hidden)
            for d, h in enumerate(hidden):
                db.execute("INSERT INTO outcomes VALUES (?, ?, ?, ?)",
                           (rid, d, best[min(d, len(best) - 1)], int(bool(h))))
        return True

    def import_run(self, run_dir: str | Path, tasks: list | None = None) -> tuple[int, int]:
        """Ingest every finished record of a run directory: (added, already there). Idempotent. Records whose
        every model call failed are not results: they are left out and counted in `self.not_scored`."""
        from .evaluate import read_config, read_records, scored

        run_dir = Path(run_dir)
        config = read_config(run_dir)
        by_id = {t.task_id: t for t in tasks or []}
        added = seen = 0
        records = read_records(run_dir, full=True)
        self.not_scored = len(records) - len(scored(records))
        for rec in scored(records):
            if self.add_record(config, rec, by_id.get(rec["task_id"]), run=str(run_dir.resolve())):
                added += 1
            else:
                seen += 1
        return added, seen

    # -- reading ---------------------------------------------------------------------------------------
    def rows(self, sql: str, params: tuple = ()) -> list[dict]:
        try:
            cur = self.db.execute(sql, params)
            names = [c[0] for c in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]
        except sqlite3.DatabaseError as e:
            raise StoreError(f"store {self.path} cannot be read: {_explain(e)}") from None

    def records(self, splits: tuple[str, ...] | None = None) -> list[dict]:
        """Record rows in the order they were added, each with `hidden_by_depth` (list of bool)."""
        where = f"WHERE split IN ({', '.join('?' * len(splits))})" if splits else ""
        rows = self.rows(f"SELECT * FROM records {where} ORDER BY record_id", tuple(splits or ()))
        hidden: dict[int, list] = {}
        for o in self.rows("SELECT record_id, hidden FROM outcomes ORDER BY record_id, depth"):
            hidden.setdefault(o["record_id"], []).append(bool(o["hidden"]))
        for r in rows:
            r["hidden_by_depth"] = hidden.get(r["record_id"], [])
        return rows

    def steps(self, record_id: int) -> list[dict]:
        return self.rows("SELECT * FROM steps WHERE record_id = ? ORDER BY depth", (record_id,))

    def integrity(self) -> list[str]:
        """Problems found: SQLite's integrity_check, and records whose steps or outcomes are incomplete."""
        problems = [r[0] for r in self.db.execute("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [f"record {r[0]}: {r[1]} steps stored, {r[2]} expected" for r in self.db.execute(
            "SELECT r.record_id, count(s.depth), r.steps FROM records r LEFT JOIN steps s USING (record_id) "
            "GROUP BY r.record_id HAVING count(s.depth) != r.steps")]
        problems += [f"record {r[0]}: {r[1]} hidden outcomes stored, {r[2]} expected" for r in self.db.execute(
            "SELECT r.record_id, count(o.depth), coalesce(u.depth, 0) + 1 FROM records r JOIN runs u USING (run_id) "
            "LEFT JOIN outcomes o USING (record_id) GROUP BY r.record_id HAVING count(o.depth) != coalesce(u.depth, "
            "count(o.depth) - 1) + 1 OR count(o.depth) = 0")]
        return problems


class _Transaction:
    """`BEGIN IMMEDIATE` (take the write lock at once, so two writers never deadlock on an upgrade), COMMIT on
    success, ROLLBACK on any error (the error goes on)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, value, tb) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
