"""Prometheus metrics, read from the live objects at scrape time.

One :class:`prometheus_client.CollectorRegistry` per application (no module
globals): the collector asks the running parts for their current figures, so
nothing on the hot path has to update a metric object.
"""

from __future__ import annotations

from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

AMI_STATES = ("disconnected", "connecting", "connected", "auth_failed")


class Probe:
    """A named figure: ``kind`` is "gauge" or "counter"; ``read`` returns the value now."""

    def __init__(self, name: str, doc: str, kind: str, read: Callable[[], float]) -> None:
        self.name, self.doc, self.kind, self.read = name, doc, kind, read


class CallcoreCollector:
    def __init__(self) -> None:
        self.probes: list[Probe] = []
        self.ami_state: Callable[[], str] | None = None
        self.labelled: list[tuple[str, str, str, Callable[[], dict[str, float]]]] = []

    def gauge(self, name: str, doc: str, read: Callable[[], float]) -> None:
        self.probes.append(Probe(name, doc, "gauge", read))

    def counter(self, name: str, doc: str, read: Callable[[], float]) -> None:
        self.probes.append(Probe(name, doc, "counter", read))

    def counter_by(self, name: str, doc: str, label: str, read: Callable[[], dict[str, float]]) -> None:
        """A counter with one label; ``read`` returns label value → count."""
        self.labelled.append((name, doc, label, read))

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
                value = float(p.read())
            except Exception:  # a part that is shutting down must not break the scrape
                continue
            if p.kind == "counter":
                yield CounterMetricFamily(p.name, p.doc, value=value)
            else:
                yield GaugeMetricFamily(p.name, p.doc, value=value)
        for name, doc, label, read in self.labelled:
            try:
                values = read()
            except Exception:
                continue
            fam = CounterMetricFamily(name, doc, labels=[label])
            for key, value in values.items():
                fam.add_metric([key], float(value))
            yield fam


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = CallcoreCollector()
        self.registry.register(self.collector)

    def render(self) -> bytes:
        return generate_latest(self.registry)
