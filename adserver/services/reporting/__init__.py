"""Reporting: impressions and clicks persisted from their Redis streams into the database, the
rollups each recorded fact is added to, the reports built from them, and the dashboard's overview
of a date range."""
