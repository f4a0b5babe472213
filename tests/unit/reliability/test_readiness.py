"""/readyz reasons (issue 12): AMI down (only when this process runs AMI), backlogs."""

from __future__ import annotations

from types import SimpleNamespace

from callcore.readiness import backlog_report, readiness_reasons
from callcore.settings import Settings


class FakeDispatcher:
    def __init__(self, depth: dict[str, int]) -> None:
        self.depth = depth

    def backlog(self) -> dict[str, int]:
        return self.depth


def _container(ami=True, depth=None, webhooks=0):
    cti = SimpleNamespace(dispatcher=FakeDispatcher(depth or {}), webhooks=SimpleNamespace(pending=webhooks))
    return SimpleNamespace(
        settings=Settings(ready_max_backlog=100), ami=object() if ami else None, cti=cti
    )


def test_ami_down_is_a_reason_only_when_this_process_runs_ami():
    assert readiness_reasons(_container(), True, "connected") == []
    assert readiness_reasons(_container(), True, "connecting") == ["AMI 127.0.0.1:5038 connecting"]
    assert readiness_reasons(_container(ami=False), True, "disabled") == []


def test_backlogs_over_the_limit_make_it_unready():
    c = _container(depth={"persistence": 80, "wrapup": 30}, webhooks=101)
    assert readiness_reasons(c, True, "connected") == [
        "cti_subscribers backing up: 110 waiting (limit 100)",
        "webhook_deliveries backing up: 101 waiting (limit 100)",
    ]
    assert backlog_report(c)["cti_subscribers"] == {"depth": 110, "limit": 100}
    assert readiness_reasons(c, False, "connected")[0] == "database not reachable"
