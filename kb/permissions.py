"""Who may do what in the knowledge base: ``kb.read``, ``kb.write``, ``kb.publish``.

Until the security issue's permission model lands, permissions come from the
``api.auth`` roles: every agent reads and proposes (``kb.read``, ``kb.write``),
supervisors and admins (the reviewers: supervisor / QA lead) also publish
(``kb.publish``). :func:`actor_for` is the one place that mapping lives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PERMISSIONS = ("kb.read", "kb.write", "kb.publish")
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "agent": frozenset({"kb.read", "kb.write"}),
    "supervisor": frozenset(PERMISSIONS),
    "admin": frozenset(PERMISSIONS),
}


@dataclass(frozen=True, slots=True)
class Actor:
    subject: str
    permissions: frozenset[str]

    def may(self, permission: str) -> bool:
        return permission in self.permissions

    def need(self, permission: str, message: str | None = None) -> None:
        if permission not in self.permissions:
            from kb.service import Forbidden

            raise Forbidden(message or f"requires permission {permission}")


def actor_for(principal: Any) -> Actor:
    """An :class:`Actor` for an ``api.auth.Principal`` (subject + role)."""
    return Actor(str(principal.subject), ROLE_PERMISSIONS.get(getattr(principal, "role", ""), frozenset()))


#: imports run by the server itself (first-run sample) and by the CLI
SYSTEM = Actor("system", frozenset(PERMISSIONS))
