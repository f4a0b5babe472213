"""Recording policies: which calls are recorded, how, and for how long (pure, no I/O).

A policy file (``recording-policies.yaml``, checked by :mod:`recording.checker`)
holds ``defaults`` and a list of ``rules``. Every rule matches on some of
queue, agent, direction, called number, time of day / weekday and outcome, and
says what to do. **Overlapping rules: the most protective wins**
(:func:`decide`):

* ``action``: ``never`` beats everything (a line that must not be recorded);
  otherwise ``record`` beats ``dont_record``; with no rule matching, the
  defaults' action applies;
* ``retention_days``: the longest of the matching rules that record (and the
  defaults');
* ``legal_hold`` and ``qa_sampling``: on if any matching rule turns them on;
* ``start``: ``call`` beats ``queue_entry`` beats ``agent_connect`` (more is kept);
* ``channels``: ``stereo`` beats ``mono``.

The decision is taken up to three times (:data:`STAGES`): when the call enters
the IVR (stage ``call``: queue, agent and outcome not known yet — only a
``start: call`` decision is acted on there: the IVR starts MixMonitor), at queue
entry (agent and outcome not known yet), and when the call has ended with every
fact known. A rule that needs a fact not known yet is treated as "may match"
for recording and as "not matched" for ``never``/``dont_record``; the end
decision is final (a file recorded for a call the final decision does not keep
is deleted, never kept by accident).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime, time as dtime
from typing import Any, Iterable

ACTIONS = ("record", "dont_record", "never")
STARTS = ("call", "queue_entry", "agent_connect")  # most kept first: call beats queue_entry beats agent_connect
CHANNELS = ("mono", "stereo")
DIRECTIONS = ("inbound", "outbound", "click-to-call", "callback")
OUTCOMES = ("answered", "abandoned", "unanswered", "ivr_hangup", "lost", "voicemail")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MATCH_FIELDS = ("queue", "agent", "direction", "called", "time", "days", "outcome")
#: the facts unknown when the call enters the queue
LATE_FIELDS = frozenset({"agent", "outcome"})
#: the facts unknown when the call enters the IVR (a ``start: call`` rule may not match on them)
CALL_LATE_FIELDS = LATE_FIELDS | {"queue"}
#: when a decision is taken: the call enters the IVR, the call enters a queue, the call has ended
STAGES = ("call", "queue", "final")


@dataclass(frozen=True)
class TimeWindow:
    start: dtime
    end: dtime  # exclusive; end < start wraps past midnight

    def contains(self, t: dtime) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


@dataclass(frozen=True)
class Rule:
    name: str
    action: str | None = None  # None: the rule only sets options (retention, hold, ...)
    queue: tuple[str, ...] = ()
    agent: tuple[str, ...] = ()
    direction: tuple[str, ...] = ()
    called: tuple[str, ...] = ()  # fnmatch patterns: "0800*"
    time: tuple[TimeWindow, ...] = ()
    days: tuple[str, ...] = ()
    outcome: tuple[str, ...] = ()
    start: str | None = None
    channels: str | None = None
    retention_days: int | None = None
    legal_hold: bool | None = None
    qa_sampling: bool | None = None

    def fields(self) -> set[str]:
        return {f for f in MATCH_FIELDS if getattr(self, f)}

    def matches(self, ctx: "CallFacts", *, known: Iterable[str] | None = None) -> bool | None:
        """True / False, or None when it depends on a fact not ``known`` yet."""
        undecided = False
        for f in self.fields():
            if known is not None and f not in known:
                undecided = True
                continue
            if not self._field_matches(f, ctx):
                return False
        return None if undecided else True

    def _field_matches(self, f: str, ctx: "CallFacts") -> bool:
        if f == "queue":
            return bool(set(ctx.queues) & set(self.queue))
        if f == "agent":
            return bool(set(ctx.agents) & set(self.agent))
        if f == "direction":
            return ctx.direction in self.direction
        if f == "called":
            return ctx.called is not None and any(fnmatch.fnmatchcase(ctx.called, p) for p in self.called)
        if f == "time":
            return any(w.contains(ctx.at.time()) for w in self.time)
        if f == "days":
            return WEEKDAYS[ctx.at.weekday()] in self.days
        if f == "outcome":
            return ctx.outcome in self.outcome
        raise KeyError(f)  # pragma: no cover


@dataclass(frozen=True)
class Defaults:
    action: str = "record"
    start: str = "agent_connect"
    channels: str = "mono"
    retention_days: int = 90
    legal_hold: bool = False
    qa_sampling: bool = False


@dataclass(frozen=True)
class PolicySet:
    defaults: Defaults = field(default_factory=Defaults)
    rules: tuple[Rule, ...] = ()
    source: str = "<built-in>"


@dataclass
class CallFacts:
    """What a rule can match on. ``at`` is the call's start in the policy's time zone."""

    at: datetime
    direction: str = "inbound"
    queues: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    called: str | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class Decision:
    record: bool
    start: str
    channels: str
    retention_days: int
    legal_hold: bool
    qa_sampling: bool
    rules: tuple[str, ...]  # names of the rules that matched (in file order)
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "record": self.record, "start": self.start, "channels": self.channels,
            "retention_days": self.retention_days, "legal_hold": self.legal_hold,
            "qa_sampling": self.qa_sampling, "rules": list(self.rules), "reason": self.reason,
        }


def decide(policy: PolicySet, facts: CallFacts, *, final: bool = True, stage: str | None = None) -> Decision:
    """The most protective combination of the defaults and every matching rule.

    ``stage`` is one of :data:`STAGES` (``final=False`` is the older spelling of
    ``stage="queue"``). Before the end, rules needing a fact not known yet (queue
    at ``call``; agent, outcome at ``call`` and ``queue``) may still match, so they
    can turn recording on (we would rather record and delete than miss), but cannot
    forbid it yet.
    """
    stage = stage or ("final" if final else "queue")
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    known = {"final": None, "queue": set(MATCH_FIELDS) - LATE_FIELDS, "call": set(MATCH_FIELDS) - CALL_LATE_FIELDS}[stage]
    d = policy.defaults
    sure: list[Rule] = []
    maybe: list[Rule] = []
    for rule in policy.rules:
        m = rule.matches(facts, known=known)
        if m is True:
            sure.append(rule)
        elif m is None:
            maybe.append(rule)
    names = tuple(r.name for r in sure + maybe)
    never = [r for r in sure if r.action == "never"]
    if never:
        return Decision(False, d.start, d.channels, 0, False, False, names, f"rule {never[0].name!r}: never record")
    recorders = [r for r in sure + maybe if r.action == "record"]
    refusers = [r for r in sure if r.action == "dont_record"]
    if recorders:
        record, reason = True, f"rule {recorders[0].name!r}: record"
    elif refusers:
        record, reason = False, f"rule {refusers[0].name!r}: don't record"
    else:
        record, reason = d.action == "record", "defaults: " + ("record" if d.action == "record" else "don't record")
    options = [r for r in sure + maybe if r.action in (None, "record")] if record else []
    retention = max([d.retention_days, *(r.retention_days for r in options if r.retention_days is not None)])
    starts = {d.start, *(r.start for r in options if r.start)}
    start = next(s for s in STARTS if s in starts)  # the earliest start wins
    channels = "stereo" if d.channels == "stereo" or any(r.channels == "stereo" for r in options) else "mono"
    hold = d.legal_hold or any(r.legal_hold for r in options)
    qa = d.qa_sampling or any(r.qa_sampling for r in options)
    if not record:
        return Decision(False, start, channels, 0, False, False, names, reason)
    return Decision(True, start, channels, retention, hold, qa, names, reason)
