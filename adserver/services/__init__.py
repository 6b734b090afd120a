"""Use cases, one package per domain: ``catalog`` (what marketers set up), ``serving`` (ads for a
visitor, and their clicks), ``leads`` ("request info" forms, from intake to the school) and
``reporting`` (the events and figures marketers read)."""
