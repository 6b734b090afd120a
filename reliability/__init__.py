"""Whole-system proofs run from the Makefile: ``make chaos`` (faults injected into the real stack,
then what held) and ``make load`` (Locust's realistic mix against gunicorn). Neither is part of the
test suite; the logic they share that can be checked on its own is tested in ``tests/reliability``."""
