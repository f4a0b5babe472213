"""Accounts, roles, permissions, tokens, API keys, login throttling and field encryption.

The FastAPI edge of it (the ``require("perm")`` dependency every route declares)
lives in :mod:`api.auth`; this package holds the rules and the services.
"""
