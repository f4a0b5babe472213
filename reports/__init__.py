"""KPIs and reports: the contact-center fact store, metrics, rollups, queue_log (issue 16)."""
