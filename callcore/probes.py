"""The operator's figures (issue 20), read from the live objects at scrape time.

Registered by ``Container._register_metrics``; every reader tolerates a part
that is not running (``--only``) by reading nothing. What each family means and
what to alert on: ``docs/deploy.md`` § Monitoring; the alert rules and the
Grafana dashboard in ``deploy/`` use only these names (checked by a test).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterator

from callcore.metrics import AGENT_STATES, Samples

if TYPE_CHECKING:  # pragma: no cover
    from callcore.app import Container


def register(c: "Container") -> None:
    col = c.metrics.collector

    def cti_now() -> float:  # the CTI's clock: the day of its "today" counters and its wait start times
        return getattr(c.cti, "_clock", time.time)()

    def queues() -> list[dict[str, Any]]:
        state = getattr(c.cti, "state", None)
        return state.all_queue_stats(cti_now()) if state is not None else []

    def per_queue(key: str, scale: float = 1.0) -> Samples:
        return [((q["queue"],), q[key] * scale) for q in queues() if q.get(key) is not None]

    def agents_by_state() -> Iterator[tuple[tuple[str, ...], float]]:
        for q in queues():
            for st in AGENT_STATES:
                yield (q["queue"], st), q["agents"].get(st, 0)

    col.labelled("callcore_queue_waiting", "Callers waiting in the queue now", "gauge", ("queue",), lambda: per_queue("waiting"))
    col.labelled(
        "callcore_queue_longest_wait_seconds", "Wait of the longest-waiting caller now", "gauge", ("queue",),
        lambda: per_queue("longest_wait"),
    )
    col.labelled("callcore_queue_agents", "Queue members by agent state", "gauge", ("queue", "state"), agents_by_state)
    col.labelled(
        "callcore_queue_answered_today", "Calls answered today (resets at local midnight)", "gauge", ("queue",),
        lambda: per_queue("answered_today"),
    )
    col.labelled(
        "callcore_queue_abandoned_today", "Calls abandoned today (resets at local midnight)", "gauge", ("queue",),
        lambda: per_queue("abandoned_today"),
    )
    col.labelled(
        "callcore_queue_service_level_ratio",
        "Answered within the queue's service-level threshold / (answered + abandoned), today (absent before the first call)",
        "gauge", ("queue",), lambda: per_queue("service_level", 0.01),
    )
    col.labelled(
        "callcore_queue_service_level_threshold_seconds", "The queue's service-level threshold", "gauge", ("queue",),
        lambda: per_queue("service_level_seconds"),
    )

    # --- AMI, per endpoint: one client per Asterisk server (issue 19), the label is its host:port
    from callcore.wiring import ami_servers

    def clients() -> list[tuple[str, Any]]:
        return [(f"{getattr(cl, 'host', c.settings.ami_host)}:{getattr(cl, 'port', c.settings.ami_port)}", cl)
                for cl in ami_servers(c).values()]

    def ami(attr: str) -> Samples:
        return [((endpoint,), getattr(cl, attr, 0)) for endpoint, cl in clients()]

    col.labelled(
        "callcore_ami_endpoint_up", "1 when this AMI endpoint is logged in", "gauge", ("endpoint",),
        lambda: [((endpoint,), 1 if cl.state == "connected" else 0) for endpoint, cl in clients()],
    )
    col.labelled("callcore_ami_reconnects", "AMI re-logins after a lost link", "counter", ("endpoint",), lambda: ami("reconnects"))
    col.labelled(
        "callcore_ami_connect_failures", "AMI connection attempts that failed", "counter", ("endpoint",), lambda: ami("connect_failures"),
    )
    col.labelled("callcore_ami_auth_failures", "AMI logins refused", "counter", ("endpoint",), lambda: ami("auth_failures"))

    def all_endpoints() -> str:  # events by type are counted over every server (per server: callcore_ami_server_events)
        names = [endpoint for endpoint, _ in clients()]
        return names[0] if len(names) == 1 else "all"

    col.labelled(
        "callcore_ami_events_by_type", "AMI events delivered to the CTI state, by event type", "counter", ("endpoint", "type"),
        lambda: [((all_endpoints(), name), n) for name, n in sorted(c.metrics.ami_events.items())],
    )
    col.labelled(
        "callcore_ami_last_resync_timestamp_seconds", "When the CTI state was last resynchronised from AMI", "gauge", ("endpoint",),
        lambda: [((all_endpoints(),), c.cti.last_resync)] if c.cti is not None and getattr(c.cti, "last_resync", None) else [],
    )

    # --- FastAGI refusals by reason (the total is callcore_agi_refused_total)
    col.labelled(
        "callcore_agi_refused_by_reason", "FastAGI connections refused or dropped, by reason", "counter", ("reason",),
        lambda: sorted(((r,), n) for r, n in getattr(c.agi, "refused", {}).items()) if c.agi is not None else [],
    )
    col.counter(
        "callcore_agi_sessions_failed", "FastAGI route handlers that raised (hang-ups are not failures)",
        lambda: getattr(c.agi, "sessions_failed", 0) if c.agi is not None else 0,
    )

    # --- database: how far call records trail the calls, and write errors
    def pending_persists() -> list[float]:
        cti = c.cti
        if cti is None or getattr(cti, "persistence", None) is None:
            return []
        pending = cti.persistence.pending  # queued or being written (cti/subscribers/persistence.py)
        return [call.ended_at or 0.0 for cid, call in list(cti.state.ended.items()) if cid in pending]

    col.gauge(
        "callcore_db_persistence_pending", "Ended calls whose record is not stored yet", lambda: len(pending_persists()),
    )
    col.gauge(
        "callcore_db_persistence_lag_seconds", "Age of the oldest ended call whose record is not stored yet (0: none pending)",
        lambda: max((cti_now() - t for t in pending_persists()), default=0.0),
    )
    col.labelled(
        "callcore_db_errors", "Database writes that failed every retry, by what was written", "counter", ("kind",),
        lambda: [
            (("call_record",), c.cti.persist_failures),
            (("bookkeeping",), c.cti.bookkeeping.failures),
        ] if c.cti is not None and getattr(c.cti, "persistence", None) and getattr(c.cti, "bookkeeping", None) else [],
    )
