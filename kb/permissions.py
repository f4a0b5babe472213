"""Who may do what in the knowledge base: ``kb.read``, ``kb.write``, ``kb.publish``.

The permissions and which roles hold them live in the one table, ``auth/permissions.py``
(agents and QA: read + write, i.e. propose; supervisors and QA leads: also publish;
admin: everything). Routes declare the permission they need with ``api.auth.require``;
the service checks the finer rules (a draft is its owner's, publishing needs
``kb.publish`` …) on an :class:`Actor`: the caller's subject and kb permissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auth.permissions import permissions_of

PERMISSIONS = ("kb.read", "kb.write", "kb.publish")


@dataclass(frozen=True, slots=True)
class Actor:
    subject: str
    permissions: frozenset[str]

    def may(self, permission: str) -> bool:
        return permission in self.permissions

    def need(self, permission: str, message: str | None = None) -> None:
        if permission not in self.permissions:
            from kb.service import Forbidden

            raise Forbidden(message or f"permission {permission} required")


def actor_for(principal: Any) -> Actor:
    """An :class:`Actor` for an ``api.auth.Principal`` (API keys: limited to their scopes)."""
    perms = getattr(principal, "permissions", None)
    if perms is None:
        perms = permissions_of(getattr(principal, "role", ""))
    return Actor(str(principal.subject), frozenset(p for p in perms if p in PERMISSIONS))


def actor_of_role(subject: str, role: str) -> Actor:
    return Actor(subject, frozenset(p for p in permissions_of(role) if p in PERMISSIONS))


#: imports run by the server itself (first-run sample) and by the CLI
SYSTEM = Actor("system", frozenset(PERMISSIONS))
