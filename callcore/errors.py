"""Domain errors shared by every package's services: each carries the HTTP status its
routes answer with (never a 500). Packages name their base after themselves
(``cti.errors.CtiError``, ``kb.service.KbError``, ``recording.service.RecordingError``),
all of them this one class."""

from __future__ import annotations


class DomainError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403


class Conflict(DomainError):
    status = 409


class Invalid(DomainError):
    status = 422


class Unavailable(DomainError):
    status = 503
