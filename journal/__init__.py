"""Durable local journal of call records (issue 12): nothing Asterisk reported is lost to a DB outage or a crash."""
