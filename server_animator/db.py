"""Database engine, sessions and migrations.

SQLite runs in WAL mode so the API reads while a worker writes. Every write
transaction starts with ``BEGIN IMMEDIATE``: with SQLite's default deferred
transactions a reader that later writes can fail at once with "database is
locked" (the busy timeout does not apply to that upgrade); taking the write
lock up front makes writers queue politely instead. Deleted rows are
overwritten (``secure_delete``) so an erased consent leaves no bytes behind.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Iterator

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from .config import ServerConfig

_MIGRATIONS = Path(__file__).with_name("migrations")
_engines: dict[str, Engine] = {}
_lock = threading.Lock()
# One writer at a time inside a process: threads queue on this lock (fair, no polling) instead of on
# SQLite's busy handler, whose growing sleeps made the slowest requests wait for seconds under load.
_write_lock = threading.RLock()


def _sqlite_setup(engine: Engine, durable: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


def get_engine(config: ServerConfig) -> Engine:
    """One engine per database URL and process."""
    url = config.db_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                config.data_dir.mkdir(parents=True, exist_ok=True)
                engine = create_engine(
                    url, connect_args={"check_same_thread": False, "timeout": 30},
                    pool_size=20, max_overflow=20, pool_timeout=60,
                )
                _sqlite_setup(engine, config.durable_writes)
            else:
                engine = create_engine(url, pool_pre_ping=True)
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextlib.contextmanager
def session(engine: Engine, read_only: bool = False) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error."""
    if read_only:
        with Session(engine.execution_options(sqlite_begin="DEFERRED"), expire_on_commit=False) as s:
            yield s
            s.commit()  # just ends the read (a rollback would expire the objects)
        return
    with _write_lock, Session(engine, expire_on_commit=False) as s:
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise


@contextlib.contextmanager
def write(engine: Engine) -> Iterator:
    """A Core connection in one write transaction (the worker's conditional UPDATEs)."""
    with _write_lock, engine.begin() as conn:
        yield conn


def _alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (safe to call from several processes)."""
    from alembic import command

    command.upgrade(_alembic_config(engine), "head")


def schema_is_current(engine: Engine) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(_alembic_config(engine)).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
        conn.rollback()
    return current == heads


def checkpoint(engine: Engine) -> None:
    """Fold the WAL into the database file and truncate it, so erased rows leave no old page copies."""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()  # outside any transaction: a checkpoint cannot run inside one
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        raw.close()
