"""`cogma worker`: a huey consumer that runs animation jobs, plus the reaper and janitor in a maintenance thread."""

from __future__ import annotations

import logging
import threading

from .backends import load_backend
from .config import ServerConfig
from .db import get_engine, migrate
from .jobs import WorkerRuntime
from .storage import open_store

log = logging.getLogger("cogma.worker")

ORPHAN_SWEEP_EVERY = 30  # maintenance rounds between janitor sweeps


def build_runtime(config: ServerConfig) -> WorkerRuntime:
    engine = get_engine(config)
    migrate(engine)
    backend = load_backend(config)  # once per worker process: a diffusion model loads here, not per job
    return WorkerRuntime(config, engine, open_store(config), backend)


def _maintain(runtime: WorkerRuntime, stop: threading.Event) -> None:
    rounds = 0
    while True:
        try:
            runtime.reap()
            if rounds % ORPHAN_SWEEP_EVERY == 0:
                runtime.clean_orphans()
        except Exception as e:  # keep maintaining through a busy database or a queue outage
            log.warning("maintenance round failed: %s: %s", type(e).__name__, e)
        rounds += 1
        if stop.wait(runtime.config.reaper_interval_s):
            return


def run_worker(config: ServerConfig) -> None:
    runtime = build_runtime(config)
    stop = threading.Event()
    threading.Thread(target=_maintain, args=(runtime, stop), name="maintenance", daemon=True).start()
    consumer = runtime.queue.huey.create_consumer(
        workers=config.worker_threads, worker_type="thread", periodic=False,
        initial_delay=0.05, backoff=1.2, max_delay=1.0,  # poll at least once a second when idle
    )
    log.info("worker ready (queue=%s, backend=%s, threads=%d)", config.queue, runtime.backend.name,
             config.worker_threads)
    try:
        consumer.run()
    finally:
        stop.set()
