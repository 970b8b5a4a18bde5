"""The app's local store: one SQLite file in the app's data folder, plus recordings (and videos
only when the user asks to keep them).

What is kept about a baby: a nickname and the corrected age in weeks (with the time it was
entered, so the app can tell the age today). Never a name, never a birth date. Consents are
kept with their scope, the version of the text shown and who gave them (a role). The upload
queue lives here too, so it survives the app being closed.

One connection, guarded by a lock: the app writes from its UI thread and its worker threads.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from skeleton.recording import PoseRecording

from .errors import StoreError

SCHEMA_VERSION = 1
DB_NAME = "cogma.sqlite3"
WEEK_S = 7 * 24 * 3600.0
MAX_NICKNAME = 40

_SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    id INTEGER PRIMARY KEY,
    nickname TEXT NOT NULL,
    age_weeks REAL,               -- corrected (post-term) age in weeks when entered
    age_set_at REAL,              -- when it was entered (unix time), to tell the age today
    pseudonym TEXT NOT NULL,      -- random; groups a baby's shared recordings, says nothing about it
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    profile_id INTEGER REFERENCES profiles(id) ON DELETE SET NULL,
    created_at REAL NOT NULL,
    age_weeks REAL,
    input_kind TEXT NOT NULL,
    risk REAL NOT NULL, risk_low REAL NOT NULL, risk_high REAL NOT NULL,
    band TEXT NOT NULL,
    threshold REAL NOT NULL,
    model_version TEXT NOT NULL,
    not_for_clinical_use INTEGER NOT NULL,
    details TEXT NOT NULL,        -- JSON: warnings, quality metrics, timings
    recording_file TEXT,          -- keypoints (.npz), needed to share them later
    video_file TEXT               -- only if the user chose to keep the video
);
CREATE TABLE IF NOT EXISTS consents (
    id INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    text_version TEXT NOT NULL,
    given_by TEXT NOT NULL,
    given_at REAL NOT NULL,
    withdrawn_at REAL,
    server_id TEXT,               -- consent_id on the server once registered
    erased_at REAL                -- when the server confirmed the erasure
);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,           -- register_consent | submission | withdraw_consent
    consent_id INTEGER NOT NULL REFERENCES consents(id),
    result_id INTEGER,
    idempotency_key TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,          -- pending | done | cancelled | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    response TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Profile:
    id: int
    nickname: str
    age_weeks: float | None
    age_set_at: float | None
    pseudonym: str

    def age_now(self, now: float | None = None) -> float | None:
        if self.age_weeks is None or self.age_set_at is None:
            return None
        return round(self.age_weeks + ((now or time.time()) - self.age_set_at) / WEEK_S, 1)


@dataclass(frozen=True)
class StoredResult:
    id: int
    profile_id: int | None
    nickname: str | None
    created_at: float
    age_weeks: float | None
    input_kind: str
    risk: float
    risk_low: float
    risk_high: float
    band: str
    threshold: float
    model_version: str
    not_for_clinical_use: bool
    details: dict[str, Any]
    recording_file: str | None
    video_file: str | None


@dataclass(frozen=True)
class Consent:
    id: int
    scope: str
    text_version: str
    given_by: str
    given_at: float
    withdrawn_at: float | None
    server_id: str | None
    erased_at: float | None

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None


@dataclass(frozen=True)
class Task:
    id: int
    kind: str
    consent_id: int
    result_id: int | None
    idempotency_key: str
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    response: dict[str, Any] | None


class Store:
    def __init__(self, data_dir: str | os.PathLike):
        self.dir = Path(data_dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "recordings").mkdir(exist_ok=True)
            (self.dir / "videos").mkdir(exist_ok=True)
            self._db = sqlite3.connect(self.dir / DB_NAME, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"the app's data was written by a newer version of the app (schema {version})")
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"the app's data in {self.dir} cannot be opened ({e})") from None
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- low level ----------------------------------------------------------------------
    def _run(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self._db.execute(sql, args)
            except sqlite3.DatabaseError as e:
                raise StoreError(f"the app's data cannot be written ({e})") from None

    def _rows(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._run(sql, args).fetchall()

    def _transaction(self) -> "_Tx":
        return _Tx(self)

    # -- settings -----------------------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        rows = self._rows("SELECT value FROM settings WHERE key=?", (key,))
        return rows[0]["value"] if rows else default

    def set_setting(self, key: str, value: str | None) -> None:
        if value is None:
            self._run("DELETE FROM settings WHERE key=?", (key,))
        else:
            self._run("INSERT INTO settings(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    # -- profiles -----------------------------------------------------------------------
    def add_profile(self, nickname: str, age_weeks: float | None) -> Profile:
        nickname = _clean_nickname(nickname)
        now = time.time()
        cur = self._run(
            "INSERT INTO profiles(nickname, age_weeks, age_set_at, pseudonym, created_at) VALUES(?, ?, ?, ?, ?)",
            (nickname, age_weeks, now if age_weeks is not None else None, uuid.uuid4().hex, now),
        )
        return self.profile(cur.lastrowid)

    def set_profile_age(self, profile_id: int, age_weeks: float) -> Profile:
        self._run("UPDATE profiles SET age_weeks=?, age_set_at=? WHERE id=?", (age_weeks, time.time(), profile_id))
        return self.profile(profile_id)

    def profile(self, profile_id: int) -> Profile:
        rows = self._rows("SELECT * FROM profiles WHERE id=?", (profile_id,))
        if not rows:
            raise StoreError(f"no profile {profile_id}")
        return _profile(rows[0])

    def find_profile(self, nickname: str) -> Profile | None:
        rows = self._rows("SELECT * FROM profiles WHERE nickname=? ORDER BY id DESC LIMIT 1", (nickname.strip(),))
        return _profile(rows[0]) if rows else None

    def profiles(self) -> list[Profile]:
        return [_profile(r) for r in self._rows("SELECT * FROM profiles ORDER BY id")]

    # -- results ------------------------------------------------------------------------
    def add_result(
        self,
        result: Any,  # pipeline.ScreenResult (scorable)
        profile_id: int | None,
        recording: PoseRecording | None,
        keep_video: Path | None = None,
    ) -> StoredResult:
        """Save a scored result, its keypoints and (only if asked) a copy of its video."""
        if not result.scorable or result.risk is None:
            raise StoreError("only scored results are kept in the history")
        stamp = uuid.uuid4().hex
        rec_file = vid_file = None
        if recording is not None:
            rec_file = f"recordings/{stamp}.npz"
            recording.save(self.dir / rec_file)
        if keep_video is not None:
            vid_file = f"videos/{stamp}{Path(keep_video).suffix.lower()}"
            shutil.copyfile(keep_video, self.dir / vid_file)
        details = {"warnings": result.warnings, "quality": result.quality, "timings_s": result.timings_s,
                   "headline": result.headline, "advice": result.advice, "notice": result.notice}
        cur = self._run(
            "INSERT INTO results(profile_id, created_at, age_weeks, input_kind, risk, risk_low, risk_high, band, "
            "threshold, model_version, not_for_clinical_use, details, recording_file, video_file) "
            "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (profile_id, time.time(), result.age_weeks, result.input_kind, result.risk, result.interval[0],
             result.interval[1], result.band, result.threshold, result.model_version, int(result.not_for_clinical_use),
             json.dumps(details), rec_file, vid_file),
        )
        return self.result(cur.lastrowid)

    def result(self, result_id: int) -> StoredResult:
        rows = self._rows(
            "SELECT r.*, p.nickname FROM results r LEFT JOIN profiles p ON p.id = r.profile_id WHERE r.id=?", (result_id,)
        )
        if not rows:
            raise StoreError(f"no result {result_id}")
        return _result(rows[0])

    def results(self) -> list[StoredResult]:
        rows = self._rows("SELECT r.*, p.nickname FROM results r LEFT JOIN profiles p ON p.id = r.profile_id ORDER BY r.id DESC")
        return [_result(r) for r in rows]

    def recording_path(self, result: StoredResult) -> Path | None:
        return self.dir / result.recording_file if result.recording_file else None

    def delete_result(self, result_id: int) -> None:
        """Delete a result, its files and any upload of it not yet sent."""
        res = self.result(result_id)
        with self._transaction():
            self._run("UPDATE tasks SET state='cancelled', updated_at=? WHERE result_id=? AND state='pending'",
                      (time.time(), result_id))
            self._run("DELETE FROM results WHERE id=?", (result_id,))
        for rel in (res.recording_file, res.video_file):
            if rel:
                (self.dir / rel).unlink(missing_ok=True)

    def delete_all_results(self) -> int:
        ids = [r["id"] for r in self._rows("SELECT id FROM results")]
        for rid in ids:
            self.delete_result(rid)
        return len(ids)

    # -- consents -----------------------------------------------------------------------
    def record_consent(self, scope: str, text_version: str, given_by: str) -> Consent:
        cur = self._run(
            "INSERT INTO consents(scope, text_version, given_by, given_at) VALUES(?, ?, ?, ?)",
            (scope, text_version, given_by, time.time()),
        )
        return self.consent(cur.lastrowid)

    def consent(self, consent_id: int) -> Consent:
        rows = self._rows("SELECT * FROM consents WHERE id=?", (consent_id,))
        if not rows:
            raise StoreError(f"no consent {consent_id}")
        return Consent(**dict(rows[0]))

    def active_consent(self, scope: str) -> Consent | None:
        rows = self._rows("SELECT * FROM consents WHERE scope=? AND withdrawn_at IS NULL ORDER BY id DESC LIMIT 1", (scope,))
        return Consent(**dict(rows[0])) if rows else None

    def consents(self) -> list[Consent]:
        return [Consent(**dict(r)) for r in self._rows("SELECT * FROM consents ORDER BY id")]

    def mark_withdrawn(self, consent_id: int) -> None:
        self._run("UPDATE consents SET withdrawn_at=? WHERE id=? AND withdrawn_at IS NULL", (time.time(), consent_id))

    def set_consent_server_id(self, consent_id: int, server_id: str | None) -> None:
        self._run("UPDATE consents SET server_id=? WHERE id=?", (server_id, consent_id))

    def mark_erased(self, consent_id: int) -> None:
        self._run("UPDATE consents SET erased_at=? WHERE id=?", (time.time(), consent_id))

    # -- upload tasks ---------------------------------------------------------------------
    def add_task(self, kind: str, consent_id: int, result_id: int | None = None, now: float | None = None) -> Task:
        now = now or time.time()
        cur = self._run(
            "INSERT INTO tasks(kind, consent_id, result_id, idempotency_key, state, next_attempt_at, created_at, updated_at) "
            "VALUES(?, ?, ?, ?, 'pending', ?, ?, ?)",
            (kind, consent_id, result_id, uuid.uuid4().hex, now, now, now),
        )
        return self.task(cur.lastrowid)

    def task(self, task_id: int) -> Task:
        rows = self._rows("SELECT * FROM tasks WHERE id=?", (task_id,))
        if not rows:
            raise StoreError(f"no upload task {task_id}")
        return _task(rows[0])

    def tasks(self, state: str | None = None) -> list[Task]:
        if state:
            return [_task(r) for r in self._rows("SELECT * FROM tasks WHERE state=? ORDER BY id", (state,))]
        return [_task(r) for r in self._rows("SELECT * FROM tasks ORDER BY id")]

    def due_tasks(self, now: float) -> list[Task]:
        # Consents go before the submissions that need them, withdrawals before everything.
        rows = self._rows(
            "SELECT * FROM tasks WHERE state='pending' AND next_attempt_at <= ? ORDER BY "
            "CASE kind WHEN 'withdraw_consent' THEN 0 WHEN 'register_consent' THEN 1 ELSE 2 END, id",
            (now,),
        )
        return [_task(r) for r in rows]

    def finish_task(self, task_id: int, state: str, response: dict | None = None, error: str | None = None) -> None:
        self._run(
            "UPDATE tasks SET state=?, response=?, last_error=?, updated_at=? WHERE id=?",
            (state, json.dumps(response) if response is not None else None, error, time.time(), task_id),
        )

    def retry_task(self, task_id: int, next_attempt_at: float, error: str) -> None:
        self._run(
            "UPDATE tasks SET attempts=attempts+1, next_attempt_at=?, last_error=?, updated_at=? WHERE id=?",
            (next_attempt_at, error, time.time(), task_id),
        )

    def cancel_tasks_of_consent(self, consent_id: int, kinds: tuple[str, ...]) -> int:
        marks = ",".join("?" * len(kinds))
        cur = self._run(
            f"UPDATE tasks SET state='cancelled', updated_at=? WHERE consent_id=? AND state='pending' AND kind IN ({marks})",
            (time.time(), consent_id, *kinds),
        )
        return cur.rowcount

    # -- everything ------------------------------------------------------------------------
    def delete_all_data(self, keep_pending_withdrawals: bool = False) -> None:
        """Profiles, results, files, consents and queue: the app is as new.

        With ``keep_pending_withdrawals``, erasure requests not yet delivered to the server stay
        (with the consent rows and device credentials they need; none holds personal data)."""
        keep = keep_pending_withdrawals and bool(
            self._rows("SELECT id FROM tasks WHERE kind='withdraw_consent' AND state='pending'"))
        with self._transaction():
            if keep:
                self._run("DELETE FROM tasks WHERE NOT (kind='withdraw_consent' AND state='pending')")
                self._run("DELETE FROM consents WHERE id NOT IN (SELECT consent_id FROM tasks)")
                self._run("DELETE FROM settings WHERE key NOT IN ('server_url', 'device_id', 'device_token')")
            else:
                for table in ("tasks", "consents", "settings"):
                    self._run(f"DELETE FROM {table}")
            self._run("DELETE FROM results")
            self._run("DELETE FROM profiles")
        for sub in ("recordings", "videos"):
            shutil.rmtree(self.dir / sub, ignore_errors=True)
            (self.dir / sub).mkdir(exist_ok=True)
        self._run("VACUUM")  # deleted rows must not linger in free pages


class _Tx:
    def __init__(self, store: Store):
        self.store = store

    def __enter__(self) -> None:
        self.store._lock.acquire()
        self.store._db.execute("BEGIN")

    def __exit__(self, exc_type, *_: object) -> None:
        try:
            self.store._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store._lock.release()


def _clean_nickname(nickname: str) -> str:
    nickname = " ".join((nickname or "").split())
    if not nickname:
        raise StoreError("Please give your baby a nickname (it stays on this phone).")
    if len(nickname) > MAX_NICKNAME:
        raise StoreError(f"Please use a nickname of at most {MAX_NICKNAME} characters.")
    return nickname


def _profile(row: sqlite3.Row) -> Profile:
    return Profile(id=row["id"], nickname=row["nickname"], age_weeks=row["age_weeks"],
                   age_set_at=row["age_set_at"], pseudonym=row["pseudonym"])


def _result(row: sqlite3.Row) -> StoredResult:
    d = dict(row)
    d["details"] = json.loads(d["details"])
    d["not_for_clinical_use"] = bool(d["not_for_clinical_use"])
    return StoredResult(**d)


def _task(row: sqlite3.Row) -> Task:
    d = dict(row)
    d.pop("created_at"), d.pop("updated_at")
    d["response"] = json.loads(d["response"]) if d["response"] else None
    return Task(**d)


def iter_files(store: Store) -> Iterator[Path]:
    """Every file the store holds (for tests that prove deletion)."""
    yield from (p for p in store.dir.rglob("*") if p.is_file())
