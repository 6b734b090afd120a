"""What ``GET /metrics`` reports, in Prometheus' text format.

Three sources, one answer:

* ``counted``: counters and a histogram the web processes keep themselves (ad requests, ads
  served, decision latency, lead submissions and returns). Under gunicorn they live in
  prometheus-client's multiprocess files (``PROMETHEUS_MULTIPROC_DIR``, which
  ``config/gunicorn.conf.py`` sets up), so the answer sums every worker of the host, whichever
  worker serves the scrape. Counting costs the hot path a few memory writes and no Redis call.
* ``shared``: what Celery workers count (delivery attempts and outcomes, the delivery lag, the
  sweeper's re-sends), kept in one Redis hash, so any web process reports every worker host's.
* ``gauges`` read at scrape time: queue depths, the outbox, the event streams and the age of their
  oldest waiting entry (Redis), and overdue delivery jobs (the database).
"""
