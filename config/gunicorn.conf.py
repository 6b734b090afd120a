"""Gunicorn settings for `make run` and the benchmarks (override with GUNICORN_CMD_ARGS)."""

import gc
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
threads = int(os.environ.get("WEB_THREADS", "1"))
worker_class = "sync" if threads == 1 else "gthread"
timeout = 30
graceful_timeout = 10
accesslog = None
# Build the app once per worker after fork, so each gets its own pools and campaign index.
preload_app = False

# Every worker counts its requests in files in this folder (prometheus-client's multiprocess mode), so
# GET /metrics answers for all of them whichever worker serves it. Set before any worker imports the app.
# Without PROMETHEUS_MULTIPROC_DIR, a folder of this run's own, removed when gunicorn exits.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="adserver-metrics-")
metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def on_starting(server):  # type: ignore[no-untyped-def]
    """Counts start from zero with the server: the files of an earlier run are removed."""
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """A worker that exited keeps its counts in the sums; it no longer counts in live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server):  # type: ignore[no-untyped-def]
    if _own_metrics_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Build the worker's campaign index before it accepts requests, not on its first request. Then
    leave what start-up built (modules, the app, the index), which lives as long as the worker, out
    of the cycle collector's full passes: walking it again on each one paused a request that makes
    many objects, such as a large report, by up to 150 ms."""
    app = worker.wsgi
    if "campaign_index" in getattr(app, "extensions", {}):
        from adserver.services.serving.index import warm_up

        warm_up(app)
    gc.freeze()
