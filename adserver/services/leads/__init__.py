"""Leads: "request info" intake (eligibility, duplicates, caps, the outbox), sealing the personal
fields, delivery to schools' endpoints, the school feed and returns."""
