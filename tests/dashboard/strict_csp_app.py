"""The app as `make run` serves it, with the strict Content-Security-Policy that every HTML page is
to be served with, so the browser tests see whether the dashboard works under it (no inline script
or style). gunicorn serves it as ``tests.dashboard.strict_csp_app:app``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from wsgi import app

STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'"


def _with_strict_csp(wsgi_app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if any(name.lower() == "content-type" and value.startswith("text/html") for name, value in headers):
                headers = [*headers, ("Content-Security-Policy", STRICT_CSP)]
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, start)

    return serve


app.wsgi_app = _with_strict_csp(app.wsgi_app)  # type: ignore[method-assign]
