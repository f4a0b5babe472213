"""Prometheus metrics, read from the live objects at scrape time.

One :class:`prometheus_client.CollectorRegistry` per application (no module
globals): the collector asks the running parts for their current figures, so
nothing on the hot path has to update a metric object. The only figures
recorded as they happen are the ones that cannot be read later — latencies
(histograms) and what passed through an edge (HTTP requests, websocket
messages, AMI events by type); each is one dict/histogram update.

Labels are bounded: queue names (Asterisk configuration), agent states, AMI
event class names, AGI command names, HTTP route *templates*, status codes,
close-reason names. Never a call id, a channel or a phone number.
The families and what to alert on: ``docs/deploy.md`` § Monitoring.
"""

from __future__ import annotations

from collections import Counter as _Tally
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

AMI_STATES = ("disconnected", "connecting", "connected", "auth_failed")
AGENT_STATES = ("logged_out", "ready", "ringing", "on_call", "wrapup", "paused")

#: websocket close codes → bounded reason names (anything else is "other")
WS_CLOSE_REASONS = {
    1000: "normal", 1001: "going_away", 1006: "abnormal", 1008: "policy", 1011: "server_error",
    1012: "restart", 1013: "too_slow", 4401: "unauthorized", 4403: "forbidden",
}

#: (label values, value) pairs of one labelled family
Samples = Iterable[tuple[tuple[str, ...], float]]


class Probe:
    """A named figure: ``kind`` is "gauge" or "counter"; ``read`` returns the value now,
    or for a labelled probe (``labels`` given) the ``(label values, value)`` pairs now."""

    def __init__(
        self, name: str, doc: str, kind: str, read: Callable[[], float] | Callable[[], Samples], labels: tuple[str, ...] = (),
    ) -> None:
        self.name, self.doc, self.kind, self.read, self.labels = name, doc, kind, read, labels


class CallcoreCollector:
    def __init__(self) -> None:
        self.probes: list[Probe] = []
        self.ami_state: Callable[[], str] | None = None

    def gauge(self, name: str, doc: str, read: Callable[[], float]) -> None:
        self.probes.append(Probe(name, doc, "gauge", read))

    def counter(self, name: str, doc: str, read: Callable[[], float]) -> None:
        self.probes.append(Probe(name, doc, "counter", read))

    def labelled(self, name: str, doc: str, kind: str, labels: tuple[str, ...], read: Callable[[], Samples]) -> None:
        """A family with labels; ``read`` yields ``((label values...), value)`` at scrape time."""
        self.probes.append(Probe(name, doc, kind, read, labels))

    def counter_by(self, name: str, doc: str, label: str, read: Callable[[], dict[str, float]]) -> None:
        """A counter with one label; ``read`` returns label value → count."""
        self.labelled(name, doc, "counter", (label,), lambda: [((k,), v) for k, v in read().items()])

    def collect(self) -> Iterable[Metric]:
        state = self.ami_state() if self.ami_state else "disabled"
        up = GaugeMetricFamily("callcore_ami_connected", "1 when the AMI link is logged in", value=1 if state == "connected" else 0)
        yield up
        fam = GaugeMetricFamily("callcore_ami_state", "AMI link state (one-hot)", labels=["state"])
        for s in AMI_STATES + ("disabled",):
            fam.add_metric([s], 1 if s == state else 0)
        yield fam
        for p in self.probes:
            try:
                yield self._family(p)
            except Exception:  # a part that is shutting down must not break the scrape
                continue

    @staticmethod
    def _family(p: Probe) -> Metric:
        cls = CounterMetricFamily if p.kind == "counter" else GaugeMetricFamily
        if not p.labels:
            return cls(p.name, p.doc, value=float(p.read()))  # type: ignore[arg-type]
        fam = cls(p.name, p.doc, labels=list(p.labels))
        for values, value in list(p.read()):  # type: ignore[union-attr]
            fam.add_metric([str(v) for v in values], float(value))
        return fam


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = CallcoreCollector()
        self.registry.register(self.collector)
        r = self.registry
        # --- recorded as they happen (per application; see the module docstring)
        self.http_requests = Counter(
            "callcore_http_requests", "HTTP requests by route template, method and status", ["route", "method", "status"], registry=r,
        )
        self.http_latency = Histogram(
            "callcore_http_request_duration_seconds", "HTTP request latency by route template", ["route"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.agi_command_latency = Histogram(
            "callcore_agi_command_duration_seconds", "FastAGI command round trip (sent → answer) by command", ["command"],
            registry=r, buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 120),
        )
        self.ws_messages = Counter(
            "callcore_websocket_messages", "Websocket messages by direction (in: from clients, out: to clients)", ["direction"], registry=r,
        )
        self.ws_in, self.ws_out = self.ws_messages.labels("in"), self.ws_messages.labels("out")  # bound once: per message
        self.ws_disconnects = Counter(
            "callcore_websocket_disconnects", "Websocket sessions ended, by reason (close code name; refused = before accept)",
            ["reason"], registry=r,
        )
        self.ami_resync_duration = Histogram(
            "callcore_ami_resync_duration_seconds", "Time to resynchronise CTI state after an AMI (re)login", ["endpoint"],
            registry=r, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        # issue 18: the pop path and the loop, as an operator sees them (callcore/loopwatch.py)
        self.pop_latency = Histogram(
            "callcore_pop_latency_seconds",
            "AMI frame read → websocket frame written, by CTI event name (call.ringing is the screen pop)",
            ["event"], registry=r,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.loop_lag = Histogram(
            "callcore_event_loop_lag_seconds",
            "How late the event loop woke a 100 ms timer: the time a callback held the loop",
            registry=r, buckets=(0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        #: AMI events delivered to the CTI state, by event class name (bounded: typed classes only)
        self.ami_events: _Tally[str] = _Tally()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # --------------------------------------------------------------- edge recorders
    def count_ami_event(self, event: object) -> None:
        self.ami_events[type(event).__name__] += 1

    def observe_pop(self, event: str, seconds: float) -> None:
        """The websocket pump's ``on_written`` hook; event names come from cti/events.yml: bounded."""
        self.pop_latency.labels(event).observe(seconds)

    def observe_agi_command(self, name: str, seconds: float) -> None:
        """The FastAGI server's ``on_command`` hook (``ivr.agi.server.AgiSession._record``)."""
        self.agi_command_latency.labels(name).observe(seconds)  # command names come from our code: bounded


def ws_close_reason(code: int | None) -> str:
    return WS_CLOSE_REASONS.get(code or 1000, "other") if code is not None else "client_closed"


class MetricsMiddleware:
    """Pure ASGI middleware: HTTP requests by route *template* (``/api/calls/{call_id}``, never
    the concrete path) and status, with latency; websocket messages and disconnects by reason.
    Unmatched paths are one label (``unmatched``) so a scanner cannot grow the series."""

    def __init__(self, app, metrics: Metrics) -> None:  # type: ignore[no-untyped-def]
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        import time

        status = {"code": 500}

        async def send_wrapper(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_template(scope)
            self.metrics.http_latency.labels(route).observe(time.perf_counter() - started)
            method = scope.get("method", "GET") if scope.get("method") in _METHODS else "OTHER"
            self.metrics.http_requests.labels(route, method, str(status["code"])).inc()

    async def _websocket(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        meter = WsMeter(self.metrics)
        try:
            await self.app(scope, meter.receive(receive), meter.send(send))
        finally:
            meter.end()


class WsMeter:
    """One websocket session's metrics: messages in and out, and at the end one disconnect
    by reason (the first close or disconnect seen; ``refused`` when closed before the accept,
    ``abnormal`` when neither was seen). Used by :class:`MetricsMiddleware` and by an endpoint
    served in front of it (``cti/desk_socket.py``), which calls :meth:`received` itself."""

    __slots__ = ("_m", "reason", "accepted")

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        self.reason: str | None = None
        self.accepted = False

    def received(self) -> None:
        self._m.ws_in.inc()

    def saw_receive(self, message: dict) -> None:  # type: ignore[type-arg]
        kind = message["type"]
        if kind == "websocket.receive":
            self._m.ws_in.inc()
        elif kind == "websocket.disconnect" and self.reason is None:
            self.reason = ws_close_reason(None)

    def saw_send(self, message: dict) -> None:  # type: ignore[type-arg]
        kind = message["type"]
        if kind == "websocket.send":
            self._m.ws_out.inc()
        elif kind == "websocket.accept":
            self.accepted = True
        elif kind in ("websocket.close", "websocket.http.response.start") and self.reason is None:
            self.reason = ws_close_reason(message.get("code", 1000)) if self.accepted else "refused"

    def receive(self, receive):  # type: ignore[no-untyped-def]
        async def metered():  # type: ignore[no-untyped-def]
            message = await receive()
            self.saw_receive(message)
            return message

        return metered

    def send(self, send):  # type: ignore[no-untyped-def]
        async def metered(message):  # type: ignore[no-untyped-def]
            self.saw_send(message)
            await send(message)

        return metered

    def end(self) -> None:
        self._m.ws_disconnects.labels(self.reason or ("abnormal" if self.accepted else "refused")).inc()


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route_template(scope) -> str:  # type: ignore[no-untyped-def]
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    root = scope.get("app_root_path") or scope.get("root_path")  # a mounted app (static files)
    return f"{root}/*" if root else "unmatched"
