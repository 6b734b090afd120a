"""The baseline: a trivial Flask JSON endpoint, served by gunicorn exactly like the real app."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/ping")
def ping():  # type: ignore[no-untyped-def]
    return jsonify({"ok": True})
