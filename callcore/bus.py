"""In-process publish/subscribe bus between notifiers and edge sessions.

Notifiers publish :class:`Message` objects (``name``, ``payload``, routing
``audience``); websocket sessions and webhook senders subscribe with a
predicate on the audience. Delivery is non-blocking: each subscriber owns a
bounded queue; a subscriber that falls behind gets ``overflowed`` set and is
disconnected by its owner rather than stalling everyone else.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, fields
from typing import Any, Callable


@dataclass(frozen=True, slots=True)
class Message:
    name: str  # e.g. "call.ringing"
    payload: dict[str, Any]
    #: who may receive it: {"agent:1001"}, {"queue:sales"}, {"supervisor"}, ...
    audience: frozenset[str] = frozenset()
    #: perf_counter of the AMI read this message came from (0: not from an AMI frame);
    #: the websocket pump turns it into callcore_pop_latency_seconds (callcore/loopwatch.py)
    origin: float = 0.0
    #: wire texts already made of this message, by encoder name: a message going to many
    #: sockets (every supervisor, a queue's wallboards) is encoded once, not once per socket
    encoded: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


def _message_maker() -> Callable[[str, dict[str, Any], frozenset[str], float], Message]:
    """``new_message(name, payload, audience, origin)``: a :class:`Message` built by setting its
    slots through their member descriptors, without the frozen ``__init__``'s
    ``object.__setattr__`` per field (issue 18: one message per notification on the AMI read
    loop). The same object ``Message(name, payload, audience, origin)`` builds."""
    new = object.__new__
    set_name, set_payload, set_audience, set_origin, set_encoded = (
        getattr(Message, n).__set__ for n in ("name", "payload", "audience", "origin", "encoded"))
    assert [f.name for f in fields(Message)] == ["name", "payload", "audience", "origin", "encoded"]

    def new_message(name: str, payload: dict[str, Any], audience: frozenset[str], origin: float = 0.0) -> Message:
        msg = new(Message)
        set_name(msg, name)
        set_payload(msg, payload)
        set_audience(msg, audience)
        set_origin(msg, origin)
        set_encoded(msg, {})
        return msg

    return new_message


new_message = _message_maker()


@dataclass(eq=False, slots=True)
class Subscription:
    keys: set[str]
    #: None for a subscription with a ``sink`` (it keeps its own backlog)
    queue: "asyncio.Queue[Message] | None"
    overflowed: bool = False
    predicate: Callable[[Message], bool] | None = None
    #: issue 18 round five: called with each message instead of queueing it (a websocket
    #: session writes it at once, without a task of its own); returns False when its own
    #: backlog is full — the bus then counts a drop and marks the subscription overflowed
    sink: Callable[[Message], bool] | None = None

    async def get(self) -> Message:
        assert self.queue is not None, "a subscription with a sink has no queue"
        return await self.queue.get()


@dataclass
class Bus:
    max_queue: int = 1000
    _by_key: dict[str, set[Subscription]] = field(default_factory=dict)
    _wildcard: set[Subscription] = field(default_factory=set)
    published: int = 0
    dropped: int = 0

    def subscribe(
        self, keys: set[str] | None = None, predicate: Callable[[Message], bool] | None = None,
        sink: Callable[[Message], bool] | None = None,
    ) -> Subscription:
        """``keys=None`` receives everything (e.g. webhooks); otherwise messages whose audience meets ``keys``.

        With ``sink``, each message is handed to it synchronously, inside :meth:`publish`
        (no queue, no task): it must never block and never raise."""
        sub = Subscription(set(keys or ()), None if sink is not None else asyncio.Queue(self.max_queue), predicate=predicate, sink=sink)
        if keys is None:
            self._wildcard.add(sub)
        else:
            for k in sub.keys:
                self._by_key.setdefault(k, set()).add(sub)
        return sub

    def add_keys(self, sub: Subscription, keys: set[str]) -> None:
        for k in keys - sub.keys:
            sub.keys.add(k)
            self._by_key.setdefault(k, set()).add(sub)

    def remove_keys(self, sub: Subscription, keys: set[str]) -> None:
        for k in keys & sub.keys:
            sub.keys.discard(k)
            subs = self._by_key.get(k)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_key[k]

    def unsubscribe(self, sub: Subscription) -> None:
        self._wildcard.discard(sub)
        self.remove_keys(sub, set(sub.keys))

    @property
    def subscriber_count(self) -> int:
        subs: set[Subscription] = set(self._wildcard)
        for s in self._by_key.values():
            subs |= s
        return len(subs)

    def publish(self, msg: Message) -> int:
        """Deliver to every matching subscriber without awaiting. Returns how many got it."""
        self.published += 1
        targets = set(self._wildcard)
        by_key = self._by_key
        for key in msg.audience:  # _keyed, inlined (once per notification, issue 18)
            subs = by_key.get(key)
            if subs:
                targets |= subs
        return self._deliver(msg, targets)

    def _keyed(self, msg: Message, targets: set[Subscription]) -> set[Subscription]:
        """``targets`` plus the subscribers of the message's audience keys."""
        for key in msg.audience:
            subs = self._by_key.get(key)
            if subs:
                targets |= subs
        return targets

    def _deliver(self, msg: Message, targets: set[Subscription]) -> int:
        """Queue ``msg`` for each target whose predicate takes it; a full queue marks its
        subscriber overflowed and counts a drop. Returns how many got it."""
        n = 0
        for sub in targets:
            if sub.predicate is not None and not sub.predicate(msg):
                continue
            if sub.sink is not None:
                if sub.sink(msg):
                    n += 1
                else:
                    sub.overflowed = True
                    self.dropped += 1
                continue
            try:
                sub.queue.put_nowait(msg)
                n += 1
            except asyncio.QueueFull:
                sub.overflowed = True
                self.dropped += 1
        return n
