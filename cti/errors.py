"""Domain errors of the CTI services; :class:`cti.routes.CtiRoute` turns each into
its HTTP status (never a 500)."""

from __future__ import annotations

from callcore.errors import Conflict, DomainError as CtiError, Forbidden, Invalid, NotFound, Unavailable

__all__ = ["CtiError", "NotFound", "Conflict", "Forbidden", "Invalid", "AmiFailed", "AmiUnavailable"]


class AmiFailed(CtiError):
    status = 502


class AmiUnavailable(Unavailable):
    status = 503
