"""The job queue: huey on a SQLite file by default, on Redis by configuration.

The queue only carries job ids; the database is the source of truth. A
message may be delivered twice or lost (a worker killed with SIGKILL loses
the message it had taken): the worker claims a job with a conditional UPDATE,
so a duplicate is a no-op; the reaper re-enqueues jobs whose worker
stopped sending heartbeats and queued jobs the queue does not hold (see ``jobs.py``).
"""

from __future__ import annotations

from typing import Callable

from huey import Huey, RedisHuey, SqliteHuey

from .config import ServerConfig

TASK_NAME = "cogma.animate"


def make_huey(config: ServerConfig) -> Huey:
    if config.queue == "redis":
        return RedisHuey(config.queue_name, url=config.redis_url, results=False)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    # No fsync for the queue file: it is not the source of truth (a message lost to a power cut is
    # re-enqueued by the reaper from the database), and each fsync here would slow every submission.
    return SqliteHuey(config.queue_name, filename=str(config.queue_file), results=False, fsync=False, timeout=30)


class JobQueue:
    """Enqueue job ids; in a worker, ``handler`` runs them."""

    def __init__(self, config: ServerConfig, handler: Callable[[str], None] | None = None):
        self.huey = make_huey(config)

        def animate(job_id: str) -> None:
            if handler is None:  # the API process never consumes
                raise RuntimeError("this process has no job handler")
            handler(job_id)

        self._task = self.huey.task(name=TASK_NAME)(animate)

    def enqueue(self, job_id: str, delay_s: float = 0.0) -> None:
        if delay_s > 0:
            self._task.schedule(args=(job_id,), delay=delay_s)
        else:
            self._task(job_id)

    def pending(self) -> int:
        return int(self.huey.pending_count())

    def job_ids_held(self) -> set[str]:
        """Ids of the jobs waiting in the queue or scheduled for a retry (reads every message: for the reaper)."""
        held: set[str] = set()
        for task in list(self.huey.pending()) + list(self.huey.scheduled()):
            if task.name.endswith(TASK_NAME) and task.args:
                held.add(str(task.args[0]))
        return held

    def check(self) -> None:
        """Raise when the queue's storage cannot be reached (readiness probe)."""
        self.huey.pending_count()
