"""REST edge of the recording domain (thin: parse → service → serialize).

The service is ``request.app.state.recording`` (:class:`recording.service.RecordingService`).

Permissions (``need``): ``recordings.pci`` pause/resume, ``recordings.read`` search/metadata,
``recordings.play`` audio/waveform, ``recordings.hold``, ``recordings.delete``, ``audit.read``
for the access log; who sees every recording is ``calls.read_all`` (agents: their own calls).

* ``POST /api/calls/{call_id}/recording/pause`` · ``/resume`` — the agent on the call or a supervisor
* ``GET /api/recordings`` — search (filters, sort, keyset ``cursor``); agents see only their own
  calls when ``recording_agents_see_own`` is on
* ``GET /api/recordings/{id}`` · ``/audio`` (HTTP Range, 206) · ``/waveform`` · ``/events``
* ``PUT /api/recordings/{id}/tags`` — supervisor (QA tags, searchable with ``tag=``)
* ``PUT`` / ``DELETE /api/recordings/{id}/hold`` — admin (legal hold)
* ``DELETE /api/recordings/{id}?reason=...`` — admin (data-subject request; audited)
* ``GET /api/recordings/access-log`` — admin

Every play/download/waveform read is written to the access log (who, when, which, from where).
"""

from __future__ import annotations

import re
from datetime import datetime
import logging
from typing import Any, AsyncIterator, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.auth import Principal, require
from auth import scope
from recording.repository import SearchFilters
from recording.service import CONTENT_TYPES, RecordingError, RecordingService

router = APIRouter(tags=["recording"])
log = logging.getLogger(__name__)

def need(permission: str) -> Any:
    """The route's permission: ``recordings.read|play|pci|hold|delete`` (or ``audit.read``)."""
    return Depends(require(permission))


def _agent(p: Principal) -> str:
    """The agent id a principal acts as (a user account linked to an agent, or an agent login)."""
    return getattr(p, "agent_id", None) or p.subject


def sees_all(p: Principal) -> bool:
    """Supervisors, QA and admins read every recording; agents only their own calls'."""
    return "calls.read_all" in p.permissions
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def svc(request: Request) -> RecordingService:
    service = getattr(request.app.state, "recording", None)
    if service is None:
        raise HTTPException(503, "recording is not enabled in this process")
    return service


def _fail(exc: RecordingError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


class PauseBody(BaseModel):
    reason: str | None = Field(default=None, max_length=200)


class TagsBody(BaseModel):
    tags: list[str] = Field(max_length=20)


class HoldBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


# ------------------------------------------------------------------ PCI pause / resume
async def _pause_or_resume(which: str, call_id: str, body: PauseBody | None, request: Request, p: Principal) -> Any:
    service = svc(request)
    call = service.call_lookup(call_id) if service.call_lookup else None
    if call is None:
        raise HTTPException(404, f"no live call {call_id}")
    if not service.may_control(call, _agent(p), "supervisor" if sees_all(p) else p.role):
        raise HTTPException(403, "only the agent on the call or a supervisor may pause or resume its recording")
    try:
        fn = service.pause if which == "pause" else service.resume
        return await fn(call_id, p.subject, body.reason if body else None)
    except RecordingError as exc:
        raise _fail(exc) from None


@router.post("/api/calls/{call_id}/recording/pause")
async def pause_recording(call_id: str, request: Request, body: PauseBody | None = None,
                          p: Principal = need("recordings.pci")) -> Any:
    return await _pause_or_resume("pause", call_id, body, request, p)


@router.post("/api/calls/{call_id}/recording/resume")
async def resume_recording(call_id: str, request: Request, body: PauseBody | None = None,
                           p: Principal = need("recordings.pci")) -> Any:
    return await _pause_or_resume("resume", call_id, body, request, p)


# ------------------------------------------------------------------ search and metadata
def _may_read(service: RecordingService, p: Principal, rec: dict[str, Any]) -> None:
    agents = {a.get("agent_id") for a in rec.get("agents") or []} | {rec.get("agent_id")}
    if sees_all(p):
        # a supervisor or QA user limited to queues reads only their queues' recordings (issue 11)
        if scope.record_in_scope(p, [rec.get("queue"), *(rec.get("queues") or [])], agents):
            return
        raise HTTPException(403, "this recording is outside your queue scope")
    if service.agents_see_own and _agent(p) in agents:
        return
    raise HTTPException(403, "agents may read only the recordings of their own calls")


@router.get("/api/recordings/access-log")
async def access_log(request: Request, recording_id: int | None = None, limit: int = Query(200, ge=1, le=1000),
                     p: Principal = need("audit.read")) -> Any:
    return {"entries": await svc(request).repo.access_log(recording_id, limit)}


@router.get("/api/recordings")
async def search_recordings(
    request: Request,
    start: datetime | None = None,
    end: datetime | None = None,
    agent: str | None = None,
    queue: str | None = None,
    caller: str | None = None,
    called: str | None = None,
    direction: Literal["inbound", "outbound", "click-to-call", "callback"] | None = None,
    disposition: str | None = None,
    min_duration: float | None = Query(None, ge=0),
    max_duration: float | None = Query(None, ge=0),
    muted: bool | None = None,
    tag: list[str] = Query(default_factory=list),
    ivr_node: str | None = None,
    flow_version: str | None = None,
    status: Literal["recording", "pending", "ready", "failed", "discarded", "purged", "deleted"] | None = None,
    qa_sample: bool | None = None,
    server: str | None = Query(None, pattern=r"^[A-Za-z0-9_-]{1,40}$"),
    sort: Literal["started_at", "duration"] = "started_at",
    order: Literal["asc", "desc"] = "desc",
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
    p: Principal = need("recordings.read"),
) -> Any:
    service = svc(request)
    only_agent = None
    if not sees_all(p):
        if not service.agents_see_own:
            raise HTTPException(403, "agents may not list recordings (recording_agents_see_own is off)")
        only_agent = _agent(p)
    f = SearchFilters(start, end, agent, queue, caller, called, direction, disposition, min_duration, max_duration, muted,
                      list(tag), ivr_node, flow_version, status, qa_sample, only_agent,
                      only_queues=scope.queue_filter(p) if only_agent is None else None, server=server)
    try:
        items, next_cursor = await service.search(f, sort=sort, order=order, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"items": items, "next_cursor": next_cursor}


async def _readable(request: Request, recording_id: int, p: Principal) -> dict[str, Any]:
    service = svc(request)
    try:
        rec = await service.get(recording_id)
    except RecordingError as exc:
        raise _fail(exc) from None
    _may_read(service, p, rec)
    return rec


@router.get("/api/recordings/{recording_id}")
async def get_recording(recording_id: int, request: Request, p: Principal = need("recordings.read")) -> Any:
    return await _readable(request, recording_id, p)


@router.get("/api/recordings/{recording_id}/events")
async def recording_events(recording_id: int, request: Request, p: Principal = need("recordings.read")) -> Any:
    rec = await _readable(request, recording_id, p)
    return {"events": await svc(request).repo.events(rec["call_id"])}


@router.get("/api/recordings/{recording_id}/waveform")
async def waveform(recording_id: int, request: Request, p: Principal = need("recordings.play")) -> Any:
    rec = await _readable(request, recording_id, p)
    service = svc(request)
    peaks = await service.repo.get_waveform(recording_id)
    if peaks is None:
        raise HTTPException(409, f"recording {recording_id} has no waveform yet (status {rec['status']})")
    await service.log_access(recording_id, p.subject, p.role, "waveform", _client(request), None)
    return {"recording_id": recording_id, "duration": rec["duration"], "points": len(peaks[0]) if peaks else 0,
            "channels": peaks}


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``bytes=a-b`` / ``a-`` / ``-n`` → inclusive (start, end); None = whole file. Raises ValueError (416)."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        raise ValueError("only one byte range of the form bytes=START-END is supported")
    a, b = m.group(1), m.group(2)
    if not a:
        n = int(b)
        if n == 0:
            raise ValueError("empty suffix range")
        return max(0, size - n), size - 1
    start = int(a)
    end = min(int(b), size - 1) if b else size - 1
    if start >= size or end < start:
        raise ValueError(f"range not satisfiable for {size} bytes")
    return start, end


@router.get("/api/recordings/{recording_id}/audio")
async def audio(recording_id: int, request: Request, download: bool = False,
                p: Principal = need("recordings.play")) -> Response:
    await _readable(request, recording_id, p)
    service = svc(request)
    try:
        rec, size = await service.open_audio(recording_id)
        header = request.headers.get("range")
        try:
            rng = parse_range(header, size)
        except ValueError as exc:
            raise HTTPException(416, str(exc), headers={"Content-Range": f"bytes */{size}"}) from None
        start, end = rng if rng is not None else (0, size - 1)
        # streamed a piece (1 MiB) at a time; the first piece is read here, so that a missing
        # object or key still answers 410/503 before any byte of the response is sent
        pieces = service.stream_audio(rec, start, end) if size else None
        first = await anext(pieces, b"") if pieces is not None else b""
    except RecordingError as exc:
        raise _fail(exc) from None
    await service.log_access(recording_id, p.subject, p.role, "download" if download else "play", _client(request), header)
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-store"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="recording-{recording_id}.{rec["format"]}"'
    media = CONTENT_TYPES.get(rec["format"] or "wav", "application/octet-stream")
    status = 200 if rng is None else 206
    if rng is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if pieces is None or len(first) >= end - start + 1:  # all of it in one piece
        if pieces is not None:
            await pieces.aclose()
        return Response(first, status, headers=headers, media_type=media)
    headers["Content-Length"] = str(end - start + 1)
    return StreamingResponse(_rest(recording_id, first, pieces), status, headers=headers, media_type=media)


async def _rest(recording_id: int, first: bytes, pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The response body: the piece already read, then the others as the client takes them. A
    storage failure after the headers went out can only cut the response short (the client sees
    fewer bytes than Content-Length): it is logged."""
    yield first
    try:
        async for piece in pieces:
            yield piece
    except RecordingError as exc:
        log.warning("recording %s: playback cut short: %s", recording_id, exc)
        raise


@router.put("/api/recordings/{recording_id}/tags")
async def put_tags(recording_id: int, body: TagsBody, request: Request,
                   p: Principal = need("recordings.read")) -> Any:
    if not sees_all(p):
        raise HTTPException(403, "only supervisors and QA tag recordings")
    try:
        return await svc(request).set_tags(recording_id, body.tags, p.subject)
    except RecordingError as exc:
        raise _fail(exc) from None


# ------------------------------------------------------------------ hold and deletion
@router.put("/api/recordings/{recording_id}/hold")
async def put_hold(recording_id: int, body: HoldBody, request: Request, p: Principal = need("recordings.hold")) -> Any:
    try:
        return await svc(request).set_hold(recording_id, True, p.subject, body.reason)
    except RecordingError as exc:
        raise _fail(exc) from None


@router.delete("/api/recordings/{recording_id}/hold")
async def delete_hold(recording_id: int, request: Request, p: Principal = need("recordings.hold")) -> Any:
    try:
        return await svc(request).set_hold(recording_id, False, p.subject, None)
    except RecordingError as exc:
        raise _fail(exc) from None


@router.delete("/api/recordings/{recording_id}")
async def delete_recording(recording_id: int, request: Request, reason: str = Query(min_length=3, max_length=500),
                           p: Principal = need("recordings.delete")) -> Any:
    try:
        return await svc(request).remove_audio(recording_id, p.subject, reason)
    except RecordingError as exc:
        raise _fail(exc) from None
