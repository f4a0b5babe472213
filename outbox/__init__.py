"""Durable webhook outbox (issue 12): deliveries are rows, retried with backoff, dead-lettered."""
