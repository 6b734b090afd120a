"""CSV cells that a spreadsheet opens as data, never as a formula."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def spreadsheet_cell(value: Any) -> str:
    """The value as a CSV cell: empty for None, ``true``/``false``, ISO times, and text that a
    spreadsheet would take for a formula (a cell a visitor or an operator typed) quoted with ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if text[:1] in ("=", "@", "\t", "\r") or (text[:1] in ("+", "-") and not text[1:2].isdigit()):
        return "'" + text
    return text
