"""The IVR engine: walks a flow against a ``Channel``, a clock and ports.

Pure with respect to storage and network: the database is the service's job
(:mod:`ivr.service`), HTTP hides behind :class:`~ivr.lookup.LookupClient`,
routing and callbacks behind :mod:`ivr.ports`. The same walk runs behind
FastAGI, classic AGI and the console.

Guarantees:

* progress — menus/collects/surveys have bounded tries, subflow depth and the
  total number of steps are bounded, and the checker rejects loops without
  a node that waits for input;
* caller data (digits, lookup results, variables) only ever reaches the
  channel as method arguments — never a command string built here;
* a lookup that fails, times out or returns garbage takes ``fallback``;
* every node execution is a :class:`Step` with offset/duration in ms.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time as _time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable, Mapping
from urllib.parse import quote

from ivr import expressions
from ivr.channel import Channel, ChannelError, ChannelHungUp
from ivr.flow import LABEL_PLACEHOLDER, QUEUE_NAME, Flow, Node, Prompt
from ivr.lookup import LookupClient, LookupFailed
from ivr.ports import CallbackRequest, CallbackSink, PassThroughRouter, RecordingControl, RouteRequest, Router

log = logging.getLogger(__name__)

OUTCOMES = ("queue", "hangup", "callback", "voicemail", "caller_hangup", "error")
MAX_SUBFLOW_DEPTH = 8
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


#: a language by name, in each display language (the journey's ``{language}``)
LANGUAGE_NAMES: dict[str, dict[str, str]] = {
    "ko": {"ko": "한국어", "en": "Korean"},
    "en": {"ko": "영어", "en": "English"},
}


def clean_text(value: Any, limit: int = 200) -> Any:
    """Lookup values as variables: scalars only, no control characters, bounded length."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return _CONTROL.sub(" ", value)[:limit]
    raise ValueError(f"not a scalar: {type(value).__name__}")


@dataclass
class Step:
    seq: int
    flow: str
    node: str
    type: str
    started_ms: int
    duration_ms: int = 0
    input: str | None = None
    result: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        # the fields are scalars: a plain dict is what ``dataclasses.asdict`` returns, without its
        # recursive deep copy (it was 14% of an IVR session's own CPU in the FastAGI benchmark)
        return {
            "seq": self.seq, "flow": self.flow, "node": self.node, "type": self.type, "started_ms": self.started_ms,
            "duration_ms": self.duration_ms, "input": self.input, "result": self.result, "detail": self.detail,
        }


@dataclass
class IvrOutcome:
    kind: str  # one of OUTCOMES
    flow: str
    version: str | None
    end_node: str | None  # "flow:node" where the call left the IVR
    language: str
    queue: str | None = None
    priority: int | None = None
    timeout: int | None = None
    estimated_wait: int | None = None
    data: dict[str, str] = field(default_factory=dict)  # screen-pop data from the queue node
    route_reasons: list[str] = field(default_factory=list)
    survey_flow: str | None = None
    callback_id: str | None = None
    survey_answers: dict[str, int | None] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    error: str | None = None


_PARAM_NAME_RE = re.compile(r"[A-Za-z0-9_]+")

class _End(Exception):
    def __init__(self, kind: str, **info: Any) -> None:
        super().__init__(kind)
        self.kind = kind
        self.info = info


@dataclass
class _Frame:
    flow: Flow
    return_to: str | None  # node in the caller flow to continue at


class _Call:
    def __init__(self, channel: Channel, language: str) -> None:
        self.channel = channel
        self.lang = language
        self.vars: dict[str, Any] = {}
        self.path: list[str] = []
        self.digits: list[dict[str, str]] = []
        self.journey: list[dict[str, Any]] = []
        self.lookups: dict[str, dict[str, Any]] = {}
        self.steps: list[Step] = []
        self.agent_vars: list[str] = []
        self.sensitive: set[str] = set()  # variables set by a ``sensitive: true`` collect (masked when stored)
        self.survey: dict[str, int | None] = {}
        self.hours: str | None = None
        self.flows_used: dict[str, str | None] = {}
        self.callback: dict[str, Any] | None = None
        self.queue: dict[str, Any] | None = None
        self.env_fixed: dict[str, Any] | None = None  # Engine._env: what cannot change during the call
        self.env_extra: dict[str, Any] | None = None


class Engine:
    """Runs one call. Create one per call or share: it keeps no per-call state on ``self``."""

    def __init__(
        self,
        flows: Mapping[str, Flow],
        *,
        versions: Mapping[str, str] | None = None,
        router: Router | None = None,
        callbacks: CallbackSink | None = None,
        lookup: LookupClient | None = None,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = _time.monotonic,
        sounds_prefix: str = "",
        trace: Callable[[str], None] | None = None,
        max_steps: int = 500,
        recording: RecordingControl | None = None,
    ) -> None:
        self.flows = flows
        self.recording = recording
        self.versions = dict(versions or {})
        self.router = router or PassThroughRouter()
        self.callbacks = callbacks
        self.lookup = lookup
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.monotonic = monotonic
        self.sounds_prefix = sounds_prefix
        self.trace = trace
        self.max_steps = max_steps
        #: (local minute, the ``now_*`` expression fields): a cache, not per-call state
        self._now_cache: tuple[tuple[int, ...], dict[str, Any]] | None = None

    # ------------------------------------------------------------ helpers
    def _why(self, text: str) -> None:
        if self.trace is not None:
            self.trace(f"  ↪ {text}")

    def _env(self, call: _Call, flow: Flow) -> dict[str, Any]:
        """The names an expression sees: the call's variables, then the built-ins, then
        ``argN`` / ``param_*`` (later ones win). The parts that cannot change during a call
        are built once per call, the clock fields once per minute."""
        fixed = call.env_fixed
        if fixed is None:
            info = call.channel.info
            fixed = call.env_fixed = {
                "caller": info.caller_num or "", "caller_name": info.caller_name or "", "dialed": info.dialed or "",
                "uniqueid": info.uniqueid, "channel": info.channel,
            }
            extra: dict[str, Any] = {}
            for i, arg in enumerate(info.args, 1):
                extra[f"arg{i}"] = arg
            for k, v in info.params.items():
                if _PARAM_NAME_RE.fullmatch(k):
                    extra[f"param_{k}"] = v
            call.env_extra = extra
        env: dict[str, Any] = dict(call.vars)
        env.update(fixed)
        env["lang"] = call.lang
        env["flow"] = flow.name
        env.update(self._now_fields(flow))
        env["hours_status"] = call.hours or ""
        if call.env_extra:
            env.update(call.env_extra)
        return env

    def _now_fields(self, flow: Flow) -> dict[str, Any]:
        now = self.clock().astimezone(flow.timezone)
        key = (now.year, now.month, now.day, now.hour, now.minute)
        cached = self._now_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        fields = {
            "now_date": now.strftime("%Y-%m-%d"),
            "now_time": now.strftime("%H:%M"),
            "now_hour": now.hour,
            "now_minute": now.minute,
            "now_weekday": ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[now.weekday()],
        }
        self._now_cache = (key, fields)
        return fields

    def _eval(self, expr: expressions.Expr, call: _Call, flow: Flow, notes: list[str], env: dict[str, Any] | None = None) -> Any:
        try:
            return expr.evaluate(self._env(call, flow) if env is None else env)
        except expressions.ExprError as exc:
            notes.append(f"expression {expr.source!r} failed: {exc}; using null")
            return None

    def _sounds(self, prompt: Prompt | None, call: _Call, flow: Flow) -> list[str]:
        if prompt is None:
            return []
        if call.lang in prompt.by_lang:
            lang, names = call.lang, prompt.by_lang[call.lang]
        elif "*" in prompt.by_lang:
            lang, names = call.lang, prompt.by_lang["*"]
        else:
            lang = flow.default_language if flow.default_language in prompt.by_lang else next(iter(prompt.by_lang))
            names = prompt.by_lang[lang]
        return [f"{self.sounds_prefix}{lang}/{name}" for name in names]

    async def _set_language(self, call: _Call) -> None:
        """Tell Asterisk the language too, so its own say_number/say_date speak it."""
        try:
            await call.channel.set_variable("CHANNEL(language)", call.lang)
        except ChannelHungUp:
            raise
        except (ChannelError, ValueError) as exc:
            log.warning("could not set CHANNEL(language)=%s: %s", call.lang, exc)

    async def _play(self, prompt: Prompt | None, call: _Call, flow: Flow, escape: str = "") -> str:
        for sound in self._sounds(prompt, call, flow):
            key = await call.channel.play(sound, escape)
            if key:
                return key
        return ""

    # ------------------------------------------------------------ walk
    async def run(self, channel: Channel, flow_name: str = "main", language: str | None = None) -> IvrOutcome:
        flow = self.flows.get(flow_name)
        if flow is None:
            raise KeyError(f"no flow named {flow_name!r} (loaded: {', '.join(sorted(self.flows)) or 'none'})")
        lang = language if language in flow.languages else flow.default_language
        call = _Call(channel, lang)
        t0 = self.monotonic()
        stack: list[_Frame] = [_Frame(flow, None)]
        call.flows_used[flow.name] = self.versions.get(flow.name)
        call.agent_vars = list(flow.agent_vars)
        current: str | None = flow.start
        end: _End | None = None
        node: Node | None = None
        try:
            await channel.answer()
            await self._set_language(call)
            while True:
                if len(call.steps) >= self.max_steps:
                    raise _End("error", error=f"more than {self.max_steps} steps")
                frame = stack[-1]
                node = frame.flow.nodes[current]  # the checker guarantees targets exist
                step = Step(len(call.steps) + 1, frame.flow.name, node.id, node.type, int((self.monotonic() - t0) * 1000))
                call.steps.append(step)
                call.path.append(f"{frame.flow.name}:{node.id}")
                started = self.monotonic()
                try:
                    nxt = await self._exec(node, frame.flow, call, step, stack)
                except _End:
                    self._journey(node, frame.flow, call, step)
                    raise
                finally:
                    step.duration_ms = int((self.monotonic() - started) * 1000)
                self._journey(node, frame.flow, call, step)
                if nxt is None:  # return from a subflow
                    done = stack.pop()
                    if not stack:
                        raise _End("hangup", note=f"flow {done.flow.name!r} returned")
                    nxt = done.return_to
                    self._why(f"return to {stack[-1].flow.name}:{nxt}")
                step.result = step.result or f"→ {nxt}"
                current = nxt
        except _End as e:
            end = e
            if node is not None and call.steps:
                call.steps[-1].result = call.steps[-1].result or e.kind
        except ChannelHungUp:
            end = _End("caller_hangup")
            if call.steps:
                call.steps[-1].result = "caller hung up"
            self._why(f"caller hung up during {call.path[-1] if call.path else 'answer'}")
        except Exception as exc:  # a bug must not leave the caller in silence
            log.exception("IVR engine failed on %s", call.path[-1] if call.path else flow_name)
            end = _End("error", error=f"{exc.__class__.__name__}: {exc}")
            try:
                await channel.hangup()
            except Exception:  # noqa: BLE001 - already failing; the channel may be gone
                pass
        return self._outcome(end, flow, call)

    def _outcome(self, end: _End, flow: Flow, call: _Call) -> IvrOutcome:
        info = end.info
        out = IvrOutcome(
            kind=end.kind,
            flow=flow.name,
            version=self.versions.get(flow.name),
            end_node=call.path[-1] if call.path else None,
            language=call.lang,
            queue=info.get("queue"),
            priority=info.get("priority"),
            timeout=info.get("timeout"),
            estimated_wait=info.get("estimated_wait"),
            data=info.get("data", {}),
            route_reasons=list(info.get("reasons", ())),
            survey_flow=info.get("survey_flow"),
            callback_id=info.get("callback_id"),
            survey_answers=dict(call.survey),
            variables={k: ("****" if k in call.sensitive else v) for k, v in call.vars.items()},
            steps=call.steps,
            error=info.get("error"),
        )
        out.context = self.context(call, flow, out)
        return out

    def context(self, call: _Call, flow: Flow, out: IvrOutcome | None = None) -> dict[str, Any]:
        """The call's IVR context: what the caller did, for storage and the screen pop."""
        info = call.channel.info
        agent = {name: "****" if name in call.sensitive else call.vars.get(name)
                 for name in call.agent_vars if name in call.vars}
        ctx: dict[str, Any] = {
            "flow": flow.name,
            "version": self.versions.get(flow.name),
            "flows": dict(call.flows_used),
            "caller": info.caller_num,
            "dialed": info.dialed,
            "language": call.lang,
            "path": list(call.path),
            "digits": list(call.digits),
            "journey": list(call.journey),
            "lookups": dict(call.lookups),
            "agent": agent,
            "hours": call.hours,
        }
        if call.survey:
            ctx["survey"] = dict(call.survey)
        if call.callback:
            ctx["callback"] = dict(call.callback)
        if call.queue:
            ctx["queue"] = dict(call.queue)
        if out is not None:
            ctx["outcome"] = out.kind
        return ctx

    async def _exec(self, node: Node, flow: Flow, call: _Call, step: Step, stack: list[_Frame]) -> str | None:
        handler = getattr(self, f"_n_{node.type}")
        return await handler(node, flow, call, step, stack)

    def _journey(self, node: Node, flow: Flow, call: _Call, step: Step) -> None:
        """The IVR journey in words for the screen pop: one entry per visited node that has a
        ``label``, rendered in each of its languages (``{input}`` = the keys pressed here,
        ``{language}`` = the caller's language by name, ``{var}`` = a flow variable)."""
        if not node.label:
            return
        tries = (step.input or "").split(",")
        pressed = next((t for t in reversed(tries) if t and t != "timeout"), "")

        def render(text: str, lang: str) -> str:
            def value(m: re.Match[str]) -> str:
                name = m.group(1)
                if name == "input":
                    return pressed
                if name == "language":
                    names = LANGUAGE_NAMES.get(call.lang, {})
                    return names.get(lang) or names.get("en") or call.lang
                v = call.vars.get(name)
                return "" if v is None else clean_text(str(v))

            return LABEL_PLACEHOLDER.sub(value, text)

        text = {lang: render(t, lang) for lang, t in node.label.items()}
        call.journey.append({"node": f"{flow.name}:{node.id}", "text": text})

    def _input(self, call: _Call, flow: Flow, node: Node, step: Step, keys: str) -> None:
        step.input = keys if step.input is None else f"{step.input},{keys}"
        call.digits.append({"node": f"{flow.name}:{node.id}", "input": keys})

    def _note(self, step: Step, text: str) -> None:
        step.detail = f"{step.detail}; {text}" if step.detail else text
        self._why(f"{step.flow}:{step.node}: {text}")

    # ------------------------------------------------------------ nodes
    async def _n_play(self, n: Node, flow: Flow, call: _Call, step: Step, stack) -> str:
        await self._play(n.args["prompt"], call, flow)
        return n.args["next"]

    async def _n_menu(self, n: Node, flow: Flow, call: _Call, step: Step, stack) -> str:
        a = n.args
        keys = "".join(a["options"])
        tries = a["retries"]
        for attempt in range(1, tries + 1):
            digit = await self._play(a["prompt"], call, flow, keys)
            if not digit:
                digit = await call.channel.wait_digit(a["timeout"])
            self._input(call, flow, n, step, digit or "timeout")
            if digit in a["options"]:
                self._note(step, f"digit {digit} → {a['options'][digit]}")
                return a["options"][digit]
            reason = "no key pressed" if not digit else f"key {digit!r} is not an option"
            await self._missed(step, attempt, tries, reason, "repeating", a, bool(digit), call, flow)
        return a["on_fail"]

    async def _missed(
        self, step: Step, attempt: int, tries: int, why: str, again: str, a: dict[str, Any], got_input: bool,
        call: _Call, flow: Flow,
    ) -> None:
        """A menu/collect try that failed: note why, and play the timeout or invalid prompt
        before the next try (nothing after the last: the node goes to ``on_fail``)."""
        if attempt < tries:
            self._note(step, f"try {attempt}/{tries}: {why}, {again}")
            await self._play(a["invalid_prompt"] if got_input else a["timeout_prompt"], call, flow)
        else:
            self._note(step, f"try {attempt}/{tries}: {why}; no tries left → {a['on_fail']}")

    async def _n_collect(self, n: Node, flow: Flow, call: _Call, step: Step, stack) -> str:
        if not n.args.get("sensitive"):
            return await self._collect(n, flow, call, step)
        # PCI: the recording is muted while the caller types; the digits never reach a trace
        node = f"{flow.name}:{n.id}"
        if self.recording is not None:
            await self.recording.sensitive_input(call.channel.info.linkedid or call.channel.info.uniqueid, True, node)
        try:
            return await self._collect(n, flow, call, step, masked=True)
        finally:
            if self.recording is not None:
                await self.recording.sensitive_input(call.channel.info.linkedid or call.channel.info.uniqueid, False, node)

    async def _collect(self, n: Node, flow: Flow, call: _Call, step: Step, masked: bool = False) -> str:
        a = n.args
        tries = a["retries"]
        sounds = self._sounds(a["prompt"], call, flow)
        for attempt in range(1, tries + 1):
            first = ""
            for sound in sounds[:-1]:
                first = await call.channel.play(sound, "0123456789*")
                if first:
                    break
            last = sounds[-1] if sounds and not first else None
            room = a["max_length"] - len(first)
            digits = await call.channel.collect(last, a["timeout"], room, a["terminator"]) if room > 0 else ""
            value = first + digits
            self._input(call, flow, n, step, ("*" * len(value) if masked else value) or "timeout")
            problem = None
            if not value:
                problem = "nothing entered"
            elif not (a["min_length"] <= len(value) <= a["max_length"]):
                problem = f"{len(value)} digits, need {a['min_length']}-{a['max_length']}"
            elif a["pattern"] and not re.fullmatch(a["pattern"], value):
                problem = f"does not match {a['pattern']!r}"
            if problem is None:
                call.vars[a["var"]] = value
                if masked:
                    call.sensitive.add(a["var"])
                self._note(step, f"{a['var']} = {'*' * len(value) if masked else repr(value)}")
                return a["next"]
            await self._missed(step, attempt, tries, problem, "asking again", a, bool(value), call, flow)
        return a["on_fail"]

    async def _n_say(self, n: Node, flow: Flow, call: _Call, step: Step, stack) -> str:
        a = n.args
        notes: list[str] = []
        await self._play(a["prompt"], call, flow)
        if a["digits"] is not None:
            value = expressions.to_text(self._eval(a["digits"], call, flow, notes))
            digits = "".join(ch for ch in value if ch in "0123456789*#")
            if digits:
                await call.channel.say_digits(digits)
            else:
                notes.append(f"nothing to say: {value!r} has no digits")
        elif a["number"] is not None:
            value = self._eval(a["number"], call, flow, notes)
            try:
                await call.channel.say_number(int(expressions._num(value)))
            except expressions.ExprError:
                notes.append(f"nothing to say: {value!r} is not a number")
        else:
            value = self._eval(a["date"], call, flow, notes)
            epoch = _to_epoch(value, flow)
            if epoch is None:
                notes.append(f"nothing to say: {value!r} is not a date")
            else:
                await call.channel.say_date(epoch)
        for note in notes:
            self._note(step, note)
        return a["next"]

    async def _n_set(self, n: Node, flow: Flow, call: _Call, step: Step, stack) -> str:
        notes: list[str] = []
        for name, expr in n.args["vars"].items():
            value = self._eval(expr, call, flow, notes)
            if isinstance(value, list):
                value = ",".join(expressions.to_text(v) for v in value)
            call.vars[name] = value
            notes.append(f"{name} = {value!r}")
        for note in notes:
            self._note(step, note)
        return n.args["next"]

    async def _n_branch(self, n: Node, flow: Flow, call: _Call, step: Step, stack) -> str:
        env = self._env(call, flow)
        for i, cond in enumerate(n.args["conditions"], 1):
            try:
                value = cond.expr.evaluate(env)
            except expressions.ExprError as exc:
                self._note(step, f"condition {i} `{cond.expr.source}` failed ({exc}): treated as false")
                continue
            if expressions.truthy(value):
                shown = ", ".join(f"{v}={env.get(v)!r}" for v in sorted(cond.expr.variables()))
                self._note(step, f"condition {i} `{cond.expr.source}` is true ({shown}) → {cond.target}")
                return cond.target
        shown = ", ".join(
            f"{v}={env.get(v)!r}" for v in sorted({v for c in n.args["conditions"] for v in c.expr.variables()})
        )
        self._note(step, f"no condition true ({shown}) → else {n.args['else']}")
        return n.args["else"]

    async def _n_hours(self, n: Node, flow: Flow, call: _Call, step: Step, stack) -> str:
        a = n.args
        status = flow.schedules[a["schedule"]].status(self.clock())
        call.hours = status.state
        target = a.get(status.state) or a["closed"]
        self._note(step, f"schedule {a['schedule']!r}: {status.state} — {status.reason} → {target}")
        step.input = status.local_time.isoformat(timespec="minutes")
        return target

    async def _n_lookup(self, n: Node, flow: Flow, call: _Call, step: Step, stack) -> str:
        a = n.args
        notes: list[str] = []
        key = f"{flow.name}:{n.id}"
        env = self._env(call, flow)
        path = re.sub(
            r"\{([A-Za-z_][A-Za-z0-9_]*)\}",
            lambda m: quote(expressions.to_text(env.get(m.group(1))), safe=""),
            a["path"],
        )
        query = {k: expressions.to_text(self._eval(e, call, flow, notes, env)) for k, e in (a["query"] or {}).items()}
        started = self.monotonic()
        status, reason, mapped = "ok", "", {}
        if a["wait_prompt"] is not None:
            await self._play(a["wait_prompt"], call, flow)
        if self.lookup is None:
            status, reason = "error", "no lookup client configured"
        else:
            try:
                # asyncio.timeout, not wait_for: the lookup runs in this task (wait_for wrapped it in a
                # task of its own per call: one more task and loop hop per lookup); same TimeoutError
                async with asyncio.timeout(a["timeout"]):
                    body = await self.lookup.lookup(a["method"], path, query, a["timeout"])
                if not isinstance(body, dict):
                    raise ValueError(f"expected a JSON object, got {type(body).__name__}")
                for var, field_path in a["map"].items():
                    mapped[var] = clean_text(_dig(body, field_path))
                if a["required"] and mapped.get(a["required"]) in (None, ""):
                    status, reason = "invalid", f"required field {a['required']!r} is empty"
            except asyncio.TimeoutError:
                status, reason = "timeout", f"no answer within {a['timeout']:g} s"
            except LookupFailed as exc:
                status, reason = ("timeout" if exc.reason == "timeout" else "error"), exc.reason
            except (ValueError, TypeError) as exc:
                status, reason = "invalid", f"unusable response: {exc}"
        ms = int((self.monotonic() - started) * 1000)
        call.vars["lookup_status"] = status
        record: dict[str, Any] = {"status": status, "ms": ms, "path": path}
        if status == "ok":
            call.vars.update(mapped)
            record["vars"] = mapped
            self._note(step, f"GET {path} ok in {ms} ms: " + ", ".join(f"{k}={v!r}" for k, v in mapped.items()) + f" → {a['next']}")
            target = a["next"]
        else:
            record["reason"] = reason
            self._note(step, f"{a['method']} {path} {status}: {reason} → fallback {a['fallback']}")
            target = a["fallback"]
        for note in notes:
            self._note(step, note)
        call.lookups[key] = record
        step.input = path
        return target

    async def _n_language(self, n: Node, flow: Flow, call: _Call, step: Step, stack) -> str:
        a = n.args
        before = call.lang
        if a["set"] is not None:
            call.lang = a["set"]
        else:
            keys = "".join(a["options"])
            for attempt in range(1, a["retries"] + 1):
                digit = await self._play(a["prompt"], call, flow, keys)
                if not digit:
                    digit = await call.channel.wait_digit(a["timeout"])
                self._input(call, flow, n, step, digit or "timeout")
                if digit in a["options"]:
                    call.lang = a["options"][digit]
                    break
            else:
                self._note(step, f"no valid choice; keeping {call.lang!r}")
        if call.lang != before:
            await self._set_language(call)
            self._note(step, f"language {before} → {call.lang}")
        else:
            self._note(step, f"language stays {call.lang}")
        return a["next"]

    async def _n_goto(self, n: Node, flow: Flow, call: _Call, step: Step, stack) -> str:
        return n.args["target"]

    async def _n_subflow(self, n: Node, flow: Flow, call: _Call, step: Step, stack: list[_Frame]) -> str:
        sub = self.flows[n.args["flow"]]
        if len(stack) >= MAX_SUBFLOW_DEPTH:
            raise _End("error", error=f"subflow depth over {MAX_SUBFLOW_DEPTH}")
        stack.append(_Frame(sub, n.args["next"]))
        call.flows_used.setdefault(sub.name, self.versions.get(sub.name))
        for v in sub.agent_vars:
            if v not in call.agent_vars:
                call.agent_vars.append(v)
        if call.lang not in sub.languages:
            self._note(step, f"language {call.lang!r} not in subflow {sub.name!r}; its prompts use their default")
        self._note(step, f"enter subflow {sub.name!r} (returns to {n.args['next']})")
        # the next node belongs to the new top frame
        return sub.start

    async def _n_return(self, n: Node, flow: Flow, call: _Call, step: Step, stack) -> None:
        return None

    async def _n_queue(self, n: Node, flow: Flow, call: _Call, step: Step, stack) -> str:
        a = n.args
        notes: list[str] = []
        priority = 0
        env = self._env(call, flow)  # one environment for every expression of the node
        if a["priority"] is not None:
            raw = self._eval(a["priority"], call, flow, notes, env)
            try:
                priority = int(expressions._num(raw)) if raw is not None else 0
            except expressions.ExprError:
                notes.append(f"priority {raw!r} is not a number; using 0")
        vip = expressions.truthy(self._eval(a["vip"], call, flow, notes, env)) if a["vip"] is not None else False
        data = {k: expressions.to_text(self._eval(e, call, flow, notes, env)) for k, e in (a["data"] or {}).items()}
        request = RouteRequest(
            queue=a["queue"], priority=priority, caller_num=call.channel.info.caller_num, vip=vip,
            context={**self.context(call, flow), "data": data},
        )
        decision = await self.router.route(request)
        for note in notes:
            self._note(step, note)
        wait = decision.estimated_wait
        if wait is not None:
            call.vars["queue_wait"] = wait
        if a["callback"] and (decision.offer_callback or (wait is not None and wait > a["callback_over"])):
            why = "router offers a callback" if decision.offer_callback else f"estimated wait {wait} s > {a['callback_over']} s"
            self._note(step, f"{why} → {a['callback']}")
            return a["callback"]
        timeout = decision.timeout if decision.timeout is not None else a["timeout"]
        reasons = list(decision.reasons)
        self._note(
            step,
            f"queue {decision.queue!r} priority {decision.priority}"
            + (f" (asked {a['queue']!r}/{priority})" if (decision.queue, decision.priority) != (a["queue"], priority) else "")
            + (f"; reasons: {', '.join(reasons)}" if reasons else "")
            + (f"; estimated wait {wait} s" if wait is not None else ""),
        )
        call.queue = {"queue": decision.queue, "priority": decision.priority, "data": data, "reasons": reasons}
        await self._play(a["prompt"], call, flow)
        raise _End(
            "queue", queue=decision.queue, priority=decision.priority, timeout=timeout, estimated_wait=wait,
            data=data, reasons=reasons, survey_flow=a["survey"],
        )

    async def _n_callback(self, n: Node, flow: Flow, call: _Call, step: Step, stack) -> str:
        a = n.args
        notes: list[str] = []
        info = call.channel.info
        number = expressions.to_text(self._eval(a["number"], call, flow, notes)) if a["number"] is not None else ""
        number = "".join(ch for ch in number if ch.isdigit())
        if not 4 <= len(number) <= 20:
            fallback = "".join(ch for ch in (info.caller_num or "") if ch.isdigit())
            notes.append(f"callback number {number!r} unusable; using caller number {fallback!r}")
            number = fallback
        when = expressions.to_text(self._eval(a["time"], call, flow, notes)) if a["time"] is not None else None
        queue = a["queue"]
        if a["queue_var"]:
            wanted = expressions.to_text(call.vars.get(a["queue_var"]))
            if QUEUE_NAME.match(wanted):
                queue = wanted
            else:
                notes.append(f"{a['queue_var']}={wanted!r} is not a queue name; using {queue!r}")
        for note in notes:
            self._note(step, note)
        if not number:
            self._note(step, "no number to call back")
            raise _End("error", error="callback without a number")
        cb_id = None
        if self.callbacks is None:
            self._note(step, "no callback store configured; request not saved")
        else:
            req = CallbackRequest(
                call_uniqueid=info.uniqueid, caller_num=info.caller_num, number=number, queue=queue,
                requested_time=when or None, context=self.context(call, flow),
            )
            cb_id = await self.callbacks.create_callback(req)
        call.callback = {"id": cb_id, "number": number, "time": when or None, "queue": queue}
        self._note(step, f"callback {cb_id} to {number} for queue {queue!r}" + (f" at {when}" if when else ""))
        await self._play(a["prompt"], call, flow)
        await call.channel.hangup()
        raise _End("callback", callback_id=cb_id, queue=queue)

    async def _n_voicemail(self, n: Node, flow: Flow, call: _Call, step: Step, stack) -> str:
        a = n.args
        await self._play(a["prompt"], call, flow)
        await call.channel.exec("VoiceMail", a["mailbox"], a["options"])
        self._note(step, f"voicemail {a['mailbox']}")
        await call.channel.hangup()
        raise _End("voicemail")

    async def _n_survey(self, n: Node, flow: Flow, call: _Call, step: Step, stack) -> str:
        a = n.args
        for q in a["questions"]:
            keys = "".join(str(i) for i in range(q.min, q.max + 1))
            answer: int | None = None
            for attempt in range(1, a["retries"] + 1):
                digit = await self._play(q.prompt, call, flow, keys)
                if not digit:
                    digit = await call.channel.wait_digit(a["timeout"])
                self._input(call, flow, n, step, digit or "timeout")
                if digit and digit in keys:
                    answer = int(digit)
                    break
                if attempt < a["retries"]:
                    await self._play(a["invalid_prompt"], call, flow)
            call.survey[q.id] = answer
            call.vars[f"survey_{q.id}"] = answer
            self._note(step, f"question {q.id!r}: {answer if answer is not None else 'no answer'}")
        await self._play(a["thanks"], call, flow)
        return a["next"]

    async def _n_hangup(self, n: Node, flow: Flow, call: _Call, step: Step, stack) -> str:
        await self._play(n.args["prompt"], call, flow)
        await call.channel.hangup()
        raise _End("hangup")


def _dig(body: Any, path: str) -> Any:
    cur = body
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur


def _to_epoch(value: Any, flow: Flow) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    text = expressions.to_text(value).strip()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return int(datetime(d.year, d.month, d.day, tzinfo=flow.timezone).timestamp())
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=flow.timezone)
    return int(dt.timestamp())
