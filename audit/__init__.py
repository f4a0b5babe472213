"""The audit log: append-only, hash-chained (see :mod:`audit.service`)."""
