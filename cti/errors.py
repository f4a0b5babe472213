"""Domain errors of the CTI services; :class:`cti.routes.CtiRoute` turns each into
its HTTP status (never a 500)."""

from __future__ import annotations


class CtiError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(CtiError):
    status = 404


class Conflict(CtiError):
    status = 409


class Forbidden(CtiError):
    status = 403


class Invalid(CtiError):
    status = 422


class AmiFailed(CtiError):
    status = 502


class AmiUnavailable(CtiError):
    status = 503
