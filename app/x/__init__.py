"""X domain: the Account Activity webhook (and, later, pollers, the stream and replies)."""
