"""The Celery app: ``celery -A workers worker`` and ``celery -A workers beat``.

Each worker also runs the outbox relay, a thread that turns intake's announcements of new
delivery jobs into delivery tasks (see ``adserver.services.leads.delivery.relay_announced_jobs``).
"""

import logging
import os
import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown

# Workers count their deliveries in Redis (adserver.metrics.shared); prometheus-client's multiprocess
# files are the web processes' (config/gunicorn.conf.py), which a worker must not share or clear.
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

from adserver import create_app
from adserver.services.leads import delivery

flask_app = create_app()
app = flask_app.extensions["celery"]

import workers.tasks  # noqa: E402,F401  (registers every task)

log = logging.getLogger(__name__)
_relay_stop = threading.Event()


def _relay() -> None:
    with flask_app.app_context():
        while not _relay_stop.is_set():
            try:
                delivery.relay_announced_jobs(wait_s=1.0)
            except Exception:
                # Redis is down or restarting: the jobs are in the database and the sweeper has them.
                log.warning("outbox relay failed; retrying", exc_info=True)
                _relay_stop.wait(1.0)


@worker_ready.connect
def start_outbox_relay(**_: Any) -> None:
    threading.Thread(target=_relay, name="outbox-relay", daemon=True).start()


@worker_shutdown.connect
def stop_outbox_relay(**_: Any) -> None:
    _relay_stop.set()
