"""Live calls handed from the AMI holder to its standbys (issue 19), so a take-over continues
each call with its history — queue entry, answer time, agent parts, IVR context — instead of
rebuilding it from ``CoreShowChannels`` alone (which would count the talk time from the
take-over).

* **Holder.** :class:`HandoffPublisher` is a CTI dispatcher subscriber (like ``journal/live.py``):
  a change marks its call dirty; an owned task publishes the newest picture of the dirty calls
  every ``interval`` (100 ms) on ``<prefix>.live.<ami name>``, and the id of every ended call
  (the standbys forget it: the holder stores it). Only while this instance holds the lease.
* **Standby.** :class:`HandoffReceiver` keeps the newest picture of each live call (bounded).
  At take-over (:meth:`HandoffReceiver.before_rebuild`, run by the resync right before the
  rebuild) the state's calls become those pictures; the rebuild then does what it does after any
  AMI outage: a call Asterisk still has goes on with its history, one that ended meanwhile is
  ended and stored once.
* **Trust.** A picture is a pickled ``cti.state.Call`` (as in the local journal), sealed with an
  HMAC-SHA256 under the cluster's token signing key (``CALLCORE_JWT_KEY``, the same on every
  instance): a message without a valid seal is dropped and counted, never unpickled.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import pickle
from collections import OrderedDict
from typing import Any, Callable

log = logging.getLogger("callcore.handoff")


def seal(key: bytes, blob: bytes) -> str:
    return base64.b64encode(hmac.new(key, blob, hashlib.sha256).digest() + blob).decode()


def unseal(key: bytes, text: str) -> bytes | None:
    raw = base64.b64decode(text)
    mac, blob = raw[:32], raw[32:]
    return blob if hmac.compare_digest(mac, hmac.new(key, blob, hashlib.sha256).digest()) else None


class HandoffPublisher:
    def __init__(self, state: Any, send: Callable[[bytes], Any], key: bytes, held: Callable[[], bool], *,
                 interval: float = 0.1) -> None:
        self.state = state
        self._send = send  # async (data) -> None
        self._key = key
        self._held = held
        self.interval = interval
        self._dirty: set[str] = set()
        self._ended: list[str] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.failures = 0

    def __call__(self, change: Any, now: float) -> None:  # the CTI dispatcher subscriber
        if not change.call_id or not self._held():
            return
        if change.kind == "call.ended":
            self._dirty.discard(change.call_id)
            self._ended.append(change.call_id)
        else:
            self._dirty.add(change.call_id)
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="live-call-handoff")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def message(self) -> bytes | None:
        ids, self._dirty = self._dirty, set()
        ended, self._ended = self._ended, []
        calls = []
        for call_id in ids:
            call = self.state.calls.get(call_id)
            if call is not None and call.status != "ended":
                calls.append([call_id, seal(self._key, pickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL))])
        if not calls and not ended:
            return None
        return json.dumps({"calls": calls, "ended": ended}).encode()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            data = self.message()
            if data is not None:
                try:
                    await self._send(data)
                    self.published += 1
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the broker is away: the next pictures are newer anyway
                    self.failures += 1
                    log.debug("live-call hand-off not published: %r", exc)
            await asyncio.sleep(self.interval)


class HandoffReceiver:
    def __init__(self, key: bytes, *, max_calls: int = 10_000) -> None:
        self._key = key
        self.max_calls = max_calls
        self.calls: OrderedDict[str, Any] = OrderedDict()
        self.heard = False  # a holder has published since this process started
        self.rejected = 0
        self.restored = 0

    def receive(self, data: bytes) -> None:
        try:
            msg = json.loads(data)
            pictures, ended = msg.get("calls") or [], msg.get("ended") or []
        except (ValueError, AttributeError):
            self.rejected += 1
            return
        self.heard = True
        for item in pictures:
            try:
                call_id, text = item
                blob = unseal(self._key, text)
            except (ValueError, TypeError):
                blob = None
            if blob is None:
                self.rejected += 1
                continue
            self.calls[call_id] = pickle.loads(blob)  # sealed by an instance of this cluster
            self.calls.move_to_end(call_id)
            if len(self.calls) > self.max_calls:
                self.calls.popitem(last=False)
        for call_id in ended:
            self.calls.pop(call_id, None)

    def before_rebuild(self, state: Any) -> bool:
        """At take-over: the state's live calls become the holder's last pictures. Returns
        whether a holder was heard (if not, the local journal's pictures are the best we have)."""
        if not self.heard:
            return False
        state.calls = dict(self.calls)
        self.restored = len(self.calls)
        log.info("take-over: %d live call(s) from the previous holder handed to the resync", self.restored)
        return True
