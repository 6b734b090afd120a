"""Gunicorn settings for `make run` and the benchmarks (override with GUNICORN_CMD_ARGS)."""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
threads = int(os.environ.get("WEB_THREADS", "1"))
worker_class = "sync" if threads == 1 else "gthread"
timeout = 30
graceful_timeout = 10
accesslog = None
# Build the app once per worker after fork, so each gets its own pools and campaign index.
preload_app = False


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Build the worker's campaign index before it accepts requests, not on its first request."""
    app = worker.wsgi
    if "campaign_index" in getattr(app, "extensions", {}):
        from adserver.services.serving.index import warm_up

        warm_up(app)
