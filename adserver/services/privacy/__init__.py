"""Privacy: a person's opt-out and erasure requests (the opt-out list of keyed hashes, suppressing
their pending leads, erasing their personal data, the audit of each request) and the opt-out
notices that tell schools which of the person's leads they may have."""
