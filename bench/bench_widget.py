"""The publisher widget: its size, and the time from page load to school cards shown on the demo
article, measured in headless Chromium.

Builds its own data (the demo catalog, as `make run` seeds it) in a temporary SQLite file and an
embedded Redis, and starts its own gunicorn, so it runs from a fresh clone. Figures, not pass/fail:

(a) the size of /widget.js, as served and gzipped (gunicorn does not compress; a proxy in front would);
(b) over LOADS loads of /demo/medical-office-manager?postal_code=33620, each in a fresh browser
    context (empty cache, new visitor), the time from the start of navigation to the widget
    running and to its cards being in the page: the ``adserver-widget:start`` and
    ``adserver-widget:cards`` performance marks the widget sets, read in the page.

Skipped, with a message, when /usr/bin/chromium is absent.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import CHROME_USER_AGENT, CHROMIUM, CHROMIUM_ARGS, free_port, percentile, start_gunicorn, stop  # noqa: E402

LOCAL = re.compile(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?/")
LOADS = 20
MARK = "performance.getEntriesByName('adserver-widget:{name}').map(e => e.startTime)[0] ?? null"

_TMP = Path(tempfile.mkdtemp(prefix="adserver-bench-widget-"))
PORT = free_port()
ENV = {
    "INSTANCE_DIR": str(_TMP / "instance"),
    "DATABASE_URL": f"sqlite:///{_TMP / 'bench.db'}",
    "SECRET_KEY": "bench-secret-key-0123456789abcdef",
    "ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "LOG_LEVEL": "WARNING",
    "PUBLIC_BASE_URL": f"http://127.0.0.1:{PORT}",
}
os.environ.update(ENV)
os.environ.pop("REDIS_URL", None)  # the embedded Redis under INSTANCE_DIR


def widget_size() -> None:
    content = (ROOT / "adserver" / "widget" / "static" / "widget.js").read_bytes()
    print(f"(a) /widget.js: {len(content):,} bytes, {len(gzip.compress(content, 9)):,} bytes gzipped", flush=True)


def load_times(url: str) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    started: list[float] = []
    shown: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for n in range(LOADS + 1):  # the first load warms the server and is not counted
                context = browser.new_context(user_agent=CHROME_USER_AGENT)
                # The demo schools' logos are on sites that do not exist: nothing leaves the machine.
                context.route(lambda u: not LOCAL.match(u), lambda route: route.abort())
                page = context.new_page()
                page.goto(url)
                page.get_by_test_id("school-card").first.wait_for(timeout=30_000)
                marks: Any = page.evaluate(f"[{MARK.format(name='start')}, {MARK.format(name='cards')}]")
                context.close()
                if n:
                    started.append(float(marks[0]))
                    shown.append(float(marks[1]))
        finally:
            browser.close()
    return started, shown


def main() -> int:
    widget_size()
    if not CHROMIUM.exists():
        print(f"(b) skipped: no headless Chromium at {CHROMIUM} (apt-get install -y chromium)")
        shutil.rmtree(_TMP, ignore_errors=True)
        return 0

    from flask_migrate import upgrade

    from adserver import create_app, embedded_redis
    from adserver.demo import seed_demo_catalog
    from config.settings import load_settings

    settings = load_settings()
    web = None
    try:
        with create_app(settings).app_context():
            upgrade()
            list(seed_demo_catalog())
        web = start_gunicorn("wsgi:app", PORT, env=ENV, workers=2)
        url = f"http://127.0.0.1:{PORT}/demo/medical-office-manager?postal_code=33620"
        started, shown = load_times(url)
        print(
            f"(b) demo article, {LOADS} loads in fresh browser contexts, ms from the start of navigation:", flush=True
        )
        for label, values in (("widget running", started), ("school cards shown", shown)):
            print(f"  {label:<18} median {statistics.median(values):6.1f}  p95 {percentile(values, 95):6.1f}"
                  f"  (min {min(values):.1f}, max {max(values):.1f})", flush=True)  # fmt: skip
    finally:
        if web is not None:
            stop(web)
        embedded_redis.stop(settings.embedded_redis_socket)
        shutil.rmtree(_TMP, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
