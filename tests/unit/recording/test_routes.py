"""The recording REST edge: Range playback (206), access log, permissions, clear 4xx."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from api.auth import Authenticator
from recording.routes import parse_range, router
from recording.storage import MemoryStorage
from tests.unit.recording.helpers import T0, Clock, answered, make_call, make_service, start
from tests.unit.recording.test_service import recorded_call

TOKENS = {"adm": "admin", "a1": "agent:1001", "a2": "agent:1002", "sup": "supervisor"}


@pytest.fixture
async def stack(db_sessionmaker, tmp_path):
    clock, storage = Clock(), MemoryStorage()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock, storage=storage)
    app = FastAPI()
    app.include_router(router)
    app.state.recording = svc
    app.state.authenticator = Authenticator("k", TOKENS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        yield svc, clock, storage, http


def h(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


async def test_range_playback_and_access_log(stack):
    svc, clock, storage, http = stack
    await recorded_call(svc, clock, make_call())
    await svc.run_due_jobs()
    rid = (await svc.repo.by_call("1795395000.1"))["id"]
    (blob,) = storage.objects.values()
    r = await http.get(f"/api/recordings/{rid}/audio", headers=h("a1", Range="bytes=100-299"))
    assert r.status_code == 206 and r.content == blob[100:300]
    assert r.headers["content-range"] == f"bytes 100-299/{len(blob)}" and r.headers["accept-ranges"] == "bytes"
    r = await http.get(f"/api/recordings/{rid}/audio", headers=h("sup", Range=f"bytes=-10"))
    assert r.status_code == 206 and r.content == blob[-10:]
    r = await http.get(f"/api/recordings/{rid}/audio?download=true", headers=h("adm"))
    assert r.status_code == 200 and r.content == blob and "attachment" in r.headers["content-disposition"]
    r = await http.get(f"/api/recordings/{rid}/audio", headers=h("adm", Range=f"bytes={len(blob)}-"))
    assert r.status_code == 416
    r = await http.get(f"/api/recordings/{rid}/waveform", headers=h("a1"))
    assert r.status_code == 200 and r.json()["points"] == 1000
    r = await http.get("/api/recordings/access-log", headers=h("adm"))
    log = list(reversed(r.json()["entries"]))
    assert [(e["role"], e["action"], e["range"]) for e in log] == [
        ("agent", "play", "bytes=100-299"), ("supervisor", "play", "bytes=-10"),
        ("admin", "download", None), ("agent", "waveform", None),
    ]
    assert log[0]["actor"] == "1001" and log[1]["actor"].startswith("token:")
    assert all(e["client"] == "127.0.0.1" and e["recording_id"] == rid for e in log)
    assert (await http.get("/api/recordings/access-log", headers=h("sup"))).status_code == 403


async def test_agents_see_only_their_own_recordings(stack):
    svc, clock, _, http = stack
    await recorded_call(svc, clock, make_call(), agent="1001", pause=None)
    rid = (await svc.repo.by_call("1795395000.1"))["id"]
    assert (await http.get(f"/api/recordings/{rid}", headers=h("a1"))).status_code == 200
    assert (await http.get(f"/api/recordings/{rid}", headers=h("a2"))).status_code == 403
    assert (await http.get("/api/recordings", headers=h("a2"))).json()["items"] == []
    assert len((await http.get("/api/recordings", headers=h("a1"))).json()["items"]) == 1
    svc.agents_see_own = False
    assert (await http.get(f"/api/recordings/{rid}", headers=h("a1"))).status_code == 403
    assert (await http.get("/api/recordings", headers=h("a1"))).status_code == 403
    assert (await http.get("/api/recordings")).status_code == 401


async def test_bad_requests_get_clear_4xx(stack):
    svc, clock, _, http = stack
    assert (await http.get("/api/recordings?cursor=garbage", headers=h("adm"))).status_code == 400
    assert (await http.get("/api/recordings?direction=sideways", headers=h("adm"))).status_code == 422
    assert (await http.get("/api/recordings/999", headers=h("adm"))).status_code == 404
    assert (await http.put("/api/recordings/999/hold", json={"reason": "x"}, headers=h("adm"))).status_code == 404
    assert (await http.put("/api/recordings/1/hold", json={}, headers=h("adm"))).status_code == 422
    assert (await http.delete("/api/recordings/1", headers=h("adm"))).status_code == 422  # a reason is required
    assert (await http.put("/api/recordings/1/hold", json={"reason": "x"}, headers=h("a1"))).status_code == 403
    await recorded_call(svc, clock, make_call(), pause=None)
    rid = (await svc.repo.by_call("1795395000.1"))["id"]
    r = await http.get(f"/api/recordings/{rid}/audio", headers=h("adm"))
    assert r.status_code == 409 and "pending" in r.json()["detail"]  # not processed yet
    assert (await http.put(f"/api/recordings/{rid}/tags", json={"tags": ["a b"]}, headers=h("sup"))).status_code == 400
    assert (await http.put(f"/api/recordings/{rid}/tags", json={"tags": ["x"]}, headers=h("a1"))).status_code == 403
    r = await http.put(f"/api/recordings/{rid}/tags", json={"tags": ["Complaint"]}, headers=h("sup"))
    assert r.status_code == 200 and r.json()["tags"] == ["complaint"]


async def test_pause_resume_permissions(stack):
    svc, clock, _, http = stack
    call = make_call()
    svc.call_lookup = {call.id: call}.get
    start(svc, call, T0)
    answered(svc, call, "1001", T0)
    url = f"/api/calls/{call.id}/recording"
    assert (await http.post(f"{url}/pause", headers=h("a2"))).status_code == 403
    r = await http.post(f"{url}/pause", json={"reason": "card number"}, headers=h("a1"))
    assert r.status_code == 200 and r.json()["paused"]
    assert (await http.post(f"{url}/pause", headers=h("a1"))).status_code == 409
    assert (await http.post(f"{url}/resume", headers=h("sup"))).status_code == 200
    assert (await http.post("/api/calls/1.9/recording/pause", headers=h("sup"))).status_code == 404
    svc.ami.fail = True
    assert (await http.post(f"{url}/pause", headers=h("sup"))).status_code == 503
    await svc.idle()


def test_parse_range():
    assert parse_range(None, 10) is None
    assert parse_range("bytes=2-", 10) == (2, 9) and parse_range("bytes=2-100", 10) == (2, 9)
    for bad in ("bytes=5-2", "bytes=10-", "items=1-2", "bytes=1-2,4-5", "bytes=-0"):
        with pytest.raises(ValueError):
            parse_range(bad, 10)


async def test_delete_while_storage_is_down_is_503_and_deletes_nothing(stack):
    svc, clock, storage, http = stack
    await recorded_call(svc, clock, make_call(), pause=None)
    await svc.run_due_jobs()
    rid = (await svc.repo.by_call("1795395000.1"))["id"]

    async def down(key):
        from recording.storage import StorageError

        raise StorageError("s3 delete: connection refused")

    storage.delete = down
    r = await http.delete(f"/api/recordings/{rid}?reason=data-subject%20request", headers=h("adm"))
    assert r.status_code == 503 and "nothing was deleted" in r.json()["detail"]
    assert (await svc.get(rid))["status"] == "ready"


async def test_queue_scoped_users_read_only_their_queues_recordings(stack):
    """Issue 11: a QA user (or supervisor) limited to queues lists, reads and plays only the
    recordings of calls that passed through one of them."""
    svc, clock, _, http = stack
    await recorded_call(svc, clock, make_call("1795395000.1", queue="support"), pause=None)
    await recorded_call(svc, clock, make_call("1795395000.2", queue="sales"), agent="1002", pause=None)
    await svc.run_due_jobs()
    support = (await svc.repo.by_call("1795395000.1"))["id"]
    sales = (await svc.repo.by_call("1795395000.2"))["id"]
    auth = http._transport.app.state.authenticator  # type: ignore[attr-defined]
    qa_support = {"Authorization": "Bearer " + auth.issue("user:q", "qa", queues=["support"])}
    items = (await http.get("/api/recordings", headers=qa_support)).json()["items"]
    assert [i["id"] for i in items] == [support]
    assert (await http.get("/api/recordings?queue=sales", headers=qa_support)).json()["items"] == []
    assert (await http.get(f"/api/recordings/{support}", headers=qa_support)).status_code == 200
    for path in (f"/api/recordings/{sales}", f"/api/recordings/{sales}/audio", f"/api/recordings/{sales}/waveform"):
        r = await http.get(path, headers=qa_support)
        assert r.status_code == 403 and "scope" in r.json()["detail"], path
    unscoped = {"Authorization": "Bearer " + auth.issue("user:q2", "qa")}
    assert sorted(i["id"] for i in (await http.get("/api/recordings", headers=unscoped)).json()["items"]) == sorted([support, sales])


async def test_recordings_carry_their_asterisk_server_and_filter_on_it(stack):
    """Issue 19: the recording row has the call's server (migration 0025), in the API and as a filter."""
    svc, clock, _, http = stack
    for call_id, server in (("ast1-1795395000.1", "ast1"), ("ast2-1795395000.2", "ast2"), ("ast2-1795395000.3", "ast2")):
        call = make_call(call_id)
        call.server = server
        await recorded_call(svc, clock, call, pause=None)
    items = (await http.get("/api/recordings?server=ast2", headers=h("adm"))).json()["items"]
    assert [(i["call_id"], i["server"]) for i in items] == [("ast2-1795395000.3", "ast2"), ("ast2-1795395000.2", "ast2")]
    (one,) = (await http.get("/api/recordings?server=ast1", headers=h("adm"))).json()["items"]
    assert (await http.get(f"/api/recordings/{one['id']}", headers=h("adm"))).json()["server"] == "ast1"
    assert (await http.get("/api/recordings?server=ast9", headers=h("adm"))).json()["items"] == []
    bad = await http.get("/api/recordings?server=a%20b", headers=h("adm"))
    assert bad.status_code == 422 and "server" in bad.text


async def test_audio_is_streamed_in_pieces_and_a_missing_object_is_still_410(stack):
    """Issue 18: playback streams (a piece at a time, Content-Length set) instead of reading the
    whole file; the first piece is read before the response starts, so a missing object or a
    storage outage still answers 410 / 503 rather than a cut 200."""
    svc, clock, storage, http = stack
    svc.audio_piece = 4096
    await recorded_call(svc, clock, make_call(), pause=None)  # 4 s: 64 kB, 16 pieces
    await svc.run_due_jobs()
    rid = (await svc.repo.by_call("1795395000.1"))["id"]
    (key, blob), = storage.objects.items()
    reads = []
    real = storage.read

    async def counted(k, start=0, length=None):
        reads.append(length)
        return await real(k, start, length)

    storage.read = counted
    r = await http.get(f"/api/recordings/{rid}/audio", headers=h("adm"))
    assert r.status_code == 200 and r.content == blob and r.headers["content-length"] == str(len(blob))
    assert len(reads) == -(-len(blob) // 4096) and max(reads) == 4096
    r = await http.get(f"/api/recordings/{rid}/audio", headers=h("adm", Range="bytes=5000-20000"))
    assert r.status_code == 206 and r.content == blob[5000:20001] and r.headers["content-length"] == "15001"
    assert r.headers["content-range"] == f"bytes 5000-20000/{len(blob)}"

    async def down(k, start=0, length=None):
        from recording.storage import StorageError

        raise StorageError("s3 read: connection refused")

    storage.read = down
    r = await http.get(f"/api/recordings/{rid}/audio", headers=h("adm"))
    assert r.status_code == 503 and "connection refused" in r.json()["detail"]
    del storage.objects[key]
    storage.read = real
    r = await http.get(f"/api/recordings/{rid}/audio", headers=h("adm"))
    assert r.status_code == 410 and "missing" in r.json()["detail"]
