"""Roles and permissions: the one table every route, websocket subscription and
service check reads (pure data, no I/O).

A route declares what it needs with ``Depends(require("calls.transfer"))``
(:func:`api.auth.require`); the role → permission map below decides who has it.
``admin`` has every permission. A permission name is ``<area>.<verb>``.

Add a permission here (name + description + the roles that get it) before using it
in a route: :func:`api.auth.require` refuses unknown names at import time, and the
role × route test (tests/unit/auth/test_route_permissions.py) walks every route of
the assembled app as every role.
"""

from __future__ import annotations

from typing import Mapping

ROLES: tuple[str, ...] = ("agent", "supervisor", "qa", "qa_lead", "admin", "ops")

#: name → what it allows (docs/security.md renders the same table)
PERMISSIONS: dict[str, str] = {
    # --- own session
    "auth.self": "see and end one's own session (/api/auth/me, logout)",
    # --- agents
    "agents.self": "log in/out of queues, pause, ready, see own agent record, events and current call",
    "agents.read": "list every agent",
    "agents.supervise": "force-logout / force-pause agents (of one's queues)",
    "agents.monitor": "websocket: another agent's feed (agent:<id>) and the supervisor feed",
    "agents.admin": "create, edit, delete agents (roles, PINs, skills)",
    "pause_reasons.read": "list pause reasons",
    "pause_reasons.admin": "create or edit pause reasons",
    # --- calls
    "calls.read": "list and read calls (agents: only their own)",
    "calls.read_all": "read every call of one's queues, not only one's own (calls, pops, recordings)",
    "calls.control": "hang up, hold, unhold, send DTMF on one's call",
    "calls.transfer": "blind or attended transfer",
    "calls.dial": "click-to-call",
    "calls.disposition": "set a call's disposition and notes",
    "calls.spy": "listen, whisper or barge into an agent's call",
    "numbers.unmasked": "see caller numbers unmasked",
    # --- callbacks
    "callbacks.read": "list callbacks (agents: of their queues)",
    "callbacks.create": "create callbacks by hand",
    "callbacks.take": "take and dial a callback",
    # --- customers
    "customers.read": "read customers (agents: only those of their calls, unless customers.read_all)",
    "customers.read_all": "list and search every customer",
    "customers.write": "create and edit customers, add notes",
    "customers.delete": "delete customers",
    "customers.sensitive": "see sensitive customer fields (e.g. rrn) unmasked",
    # --- queues
    "queues.read": "list queues and their live state",
    "queues.monitor": "websocket: queue:<name> and queue.stats feeds",
    "queues.admin": "change queue settings (wrap-up, overflow, priorities)",
    # --- IVR / dialplans
    "dialplans.read": "list dialplan versions",
    "dialplans.admin": "reload and roll back dialplans",
    "ivr.read": "IVR sessions and statistics",
    # --- recordings and QA (recording/ and qa/ packages)
    "recordings.read": "list recordings (agents: own calls; QA: assigned queues)",
    "recordings.play": "play or download a recording",
    "recordings.delete": "delete a recording",
    "recordings.hold": "put a recording on legal hold (exempt from retention)",
    "recordings.pci": "pause/resume recording during a call (PCI)",
    "qa.read_own": "read one's own evaluations",
    "qa.evaluate": "evaluate calls (create/edit evaluations)",
    "qa.lead": "manage forms, calibrations, disputes; read every evaluation",
    # --- knowledge base, reports
    "kb.read": "read knowledge-base articles",
    "kb.write": "write knowledge-base drafts",
    "kb.publish": "publish knowledge-base articles",
    "reports.read": "read reports and KPIs",
    # --- administration
    "audit.read": "read the audit log",
    "users.admin": "manage users and roles",
    "apikeys.admin": "create and revoke API keys",
    "settings.admin": "change server settings",
}

_AGENT = {
    "auth.self", "agents.self", "pause_reasons.read",
    "calls.read", "calls.control", "calls.transfer", "calls.dial", "calls.disposition",
    "callbacks.read", "callbacks.take",
    "customers.read", "customers.write",
    "queues.read",
    "recordings.read", "recordings.play", "recordings.pci",
    "qa.read_own", "kb.read", "kb.write",  # kb.write: any agent proposes knowledge-base articles (issue 17)
}
_SUPERVISOR = _AGENT | {
    "agents.read", "agents.supervise", "agents.monitor",
    "calls.read_all", "calls.spy", "numbers.unmasked",
    "callbacks.create", "customers.read_all", "customers.delete",
    "queues.monitor", "queues.admin",
    "dialplans.read", "ivr.read", "reports.read", "recordings.hold",
    "kb.publish",  # supervisors review and publish knowledge-base articles (issue 17)
}
_QA = {
    "auth.self", "calls.read", "calls.read_all", "queues.read",
    "recordings.read", "recordings.play", "qa.read_own", "qa.evaluate", "kb.read", "kb.write", "reports.read",
}
_QA_LEAD = _QA | {"qa.lead", "recordings.hold", "kb.publish"}  # kb.publish: QA leads publish articles (issue 17)
_OPS = {"auth.self", "queues.read", "dialplans.read", "dialplans.admin", "ivr.read", "reports.read"}

ROLE_PERMISSIONS: Mapping[str, frozenset[str]] = {
    "agent": frozenset(_AGENT),
    "supervisor": frozenset(_SUPERVISOR),
    "qa": frozenset(_QA),
    "qa_lead": frozenset(_QA_LEAD),
    "ops": frozenset(_OPS),
    "admin": frozenset(PERMISSIONS),
}


def permissions_of(role: str) -> frozenset[str]:
    return ROLE_PERMISSIONS.get(role, frozenset())


def check_table() -> None:
    """Every permission a role grants exists (run by the tests and at import)."""
    for role, perms in ROLE_PERMISSIONS.items():
        unknown = perms - PERMISSIONS.keys()
        if unknown:
            raise ValueError(f"role {role!r} grants unknown permission(s) {sorted(unknown)}")
    missing = set(ROLES) - ROLE_PERMISSIONS.keys()
    if missing:
        raise ValueError(f"roles without a permission set: {sorted(missing)}")


check_table()
