"""What makes callcore "not ready" (issue 12): ``/readyz`` answers 503 with reasons.

* the database does not answer ``SELECT 1`` within 2 s;
* this process runs the AMI part (``--only`` includes ``ami``) and the link is not
  logged in and resynced: calls are not being tracked, pops would be wrong. A
  process started with ``--only http`` (or ``agi``) has no AMI link of its own, so
  AMI is reported as ``"required": false`` and is never a reason;
* several Asterisk servers (issue 19): ready while at least one server is connected; the
  report's ``ami.servers`` gives each one's state and ``ami.down`` names those that are not
  (a server down never stops the others' pops, so it is not a reason on its own);
* scale-out (issue 19): this instance runs with a broker (``broker_url``) and is not connected
  to it: pops from the AMI holder would not reach its websockets. A standby (another
  instance holds the AMI lease, ``"ami": {"state": "standby"}``) is ready;
* bookkeeping backs up: more than ``ready_max_backlog`` facts wait to be written
  (CTI changes queued in the async subscribers — persistence, wrap-up, ... — and
  ended calls in the local journal not yet in the database, webhook deliveries not
  done). The process keeps working; a load balancer or an
  operator should look.

The report lists each backlog with its depth and limit whether or not it is over.
"""

from __future__ import annotations

from typing import Any


def backlogs(container: Any) -> dict[str, int]:
    """Name → items waiting, for every bounded-but-growing buffer the process owns."""
    out: dict[str, int] = {}
    cti = container.cti
    dispatcher = getattr(cti, "dispatcher", None)
    if dispatcher is not None:
        out["cti_subscribers"] = sum(dispatcher.backlog().values())
    journal = getattr(container, "journal", None)
    if journal is not None:
        out["journal"] = int(journal.journal.depth)
    webhooks = getattr(cti, "webhooks", None)
    if webhooks is not None and hasattr(webhooks, "pending"):
        out["webhook_deliveries"] = int(webhooks.pending)
    return out


def backlog_report(container: Any) -> dict[str, Any]:
    limit = container.settings.ready_max_backlog
    return {name: {"depth": depth, "limit": limit} for name, depth in backlogs(container).items()}


def server_states(container: Any, ami_state: str) -> dict[str, dict[str, Any]]:
    """Server name → ``{"state", "address"}``; every server is ``standby`` on a standby instance."""
    ami = container.ami
    if ami is None:
        return {}
    ports = getattr(ami, "ports", None)
    clients = {n: p.client for n, p in ports.items()} if ports else {getattr(ami, "server", "") or container.settings.ami_name: ami}
    out: dict[str, dict[str, Any]] = {}
    s = container.settings
    for name, client in clients.items():
        # one server: the state readiness was given (the lease's or the client's); several: each client's
        state = ami_state if ami_state == "standby" or not ports else getattr(client, "state", ami_state)
        out[name] = {"state": state, "address": f"{getattr(client, 'host', s.ami_host)}:{getattr(client, 'port', s.ami_port)}"}
    return out


def readiness_reasons(container: Any, db_ok: bool, ami_state: str) -> list[str]:
    reasons: list[str] = []
    if not db_ok:
        reasons.append("database not reachable")
    # scale-out (issue 19): a standby (another instance holds this AMI's lease) is ready
    if container.ami is not None and ami_state not in ("connected", "standby"):
        servers = server_states(container, ami_state)
        if len(servers) > 1:
            reasons.append("no Asterisk server connected: " + ", ".join(
                f"{n} ({v['address']}) {v['state']}" for n, v in servers.items()))
        else:
            addr = next(iter(servers.values()))["address"] if servers else f"{container.settings.ami_host}:{container.settings.ami_port}"
            reasons.append(f"AMI {addr} {ami_state}")
    relay = getattr(container, "relay", None)
    if relay is not None and relay.state != "connected":  # scale-out: no pops from/to other instances
        reasons.append(f"broker {relay.state}")
    limit = container.settings.ready_max_backlog
    for name, depth in backlogs(container).items():
        if depth > limit:
            reasons.append(f"{name} backing up: {depth} waiting (limit {limit})")
    return reasons
