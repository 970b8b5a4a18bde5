"""`cogma serve` (the HTTP API) and `cogma worker` (the job consumer). Imports stay light until a handler runs."""

from __future__ import annotations

import argparse
import errno
import logging


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML configuration file (else $COGMA_CONFIG); "
                                                    "COGMA_* environment variables override it")
    p.add_argument("--data-dir", metavar="DIR", help="where the database, queue and files live "
                                                     "(default: the platform's user data directory)")


def register(subparsers) -> None:  # noqa: ANN001
    serve = subparsers.add_parser("serve", help="run the consent-gated HTTP API (anonymized-video server)",
                                  description="Run the HTTP API. See docs/server.md for configuration.")
    _common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.set_defaults(func=_serve)

    worker = subparsers.add_parser("worker", help="run a job worker (animates submitted keypoints)",
                                   description="Run a worker that takes animation jobs from the queue.")
    _common(worker)
    worker.add_argument("--threads", type=int, help="jobs run at once in this process (default 1)")
    worker.add_argument("--backend", help="animator backend: render, diffusion or package.module:Class")
    worker.set_defaults(func=_worker)

    # `cogma animate` (the InfantAnimator pipeline, server_animator/animator/) registers below this line.
    from .animator.cli import register_animate

    register_animate(subparsers)


def _config(args: argparse.Namespace, **overrides):  # noqa: ANN202
    from .config import load_config

    cfg = load_config(args.config, data_dir=args.data_dir, **overrides)
    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return cfg


def _check_can_listen(host: str, port: int) -> None:
    """Refuse, in one line, an address the server could not listen on, before the app starts (uvicorn would log
    "API ready" and then fail with exit status 3)."""
    import socket

    from skeleton.errors import CogmaError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as e:
        hint = " (is another server running there? choose a port with --port)" if e.errno == errno.EADDRINUSE else ""
        raise CogmaError(f"cannot listen on {host}:{port}: {e.strerror or e}{hint}") from None


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .api.app import create_app

    cfg = _config(args, host=args.host, port=args.port)
    _check_can_listen(cfg.host, cfg.port)
    app = create_app(cfg)
    # access_log off: uvicorn's would record client addresses; the app logs route templates only.
    uvicorn.run(app, host=cfg.host, port=cfg.port, access_log=False, log_level=cfg.log_level,
                timeout_graceful_shutdown=5)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from .worker import run_worker

    cfg = _config(args, worker_threads=args.threads, backend=args.backend)
    run_worker(cfg)
    return 0
