"""The Celery app: ``celery -A workers worker`` and ``celery -A workers beat``."""

from adserver import create_app

flask_app = create_app()
app = flask_app.extensions["celery"]

import workers.tasks  # noqa: E402,F401  (registers every task)
