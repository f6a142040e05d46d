"""Worker domain: the background loop (SLA timers, expired leases; later deliveries, X polling)."""
