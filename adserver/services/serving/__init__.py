"""Ad serving: from an ad request to ranked, recorded ads (the in-memory index, campaign rules,
ranking, pacing and the live counters in Redis), and the clicks that follow."""
