"""Live polls: the poller thread, grading (health, freshness, KPIs), the fleet index and the recent in-memory history."""
