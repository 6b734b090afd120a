"""Reporting: impressions and clicks persisted from their Redis streams into the database, the
raw events that reports are built from."""
