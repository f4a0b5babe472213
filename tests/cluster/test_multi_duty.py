"""One AMI lease for several Asterisk servers (issue 19): the holder runs every server's
client, a holder that loses the lease logs off from all of them."""

from __future__ import annotations

from callcore.cluster import AmiDuty
from cti.ami.multi import MultiAmi, ServerPort
from cti.servers import ServerMap


class FakeClient:
    def __init__(self) -> None:
        self.state = "disconnected"
        self.starts = self.closes = 0

    async def start(self) -> None:
        self.starts += 1
        self.state = "connected"

    async def close(self) -> None:
        self.closes += 1
        self.state = "disconnected"


class FakeLease:
    name = "ami:default"
    epoch = 1
    held = False
    on_acquired = on_lost = None

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def test_the_holder_runs_every_server_and_gives_all_up_with_the_lease() -> None:
    smap = ServerMap([("ast1", None), ("ast2", None)])
    clients = {"ast1": FakeClient(), "ast2": FakeClient()}
    multi = MultiAmi([ServerPort(n, c, smap) for n, c in clients.items()], smap)
    lease = FakeLease()
    duty = AmiDuty("default", multi, lease)
    assert duty.state == "standby" and duty.subject == "ami.default.http"  # one lease, the old subject
    lease.held = True
    await lease.on_acquired()
    assert [c.starts for c in clients.values()] == [1, 1] and duty.state == "connected"
    clients["ast1"].state = "disconnected"  # one server down: the holder is still connected (to ast2)
    assert duty.state == "connected" and multi.states == {"ast1": "disconnected", "ast2": "connected"}
    lease.held = False
    await lease.on_lost()
    assert [c.closes for c in clients.values()] == [1, 1] and duty.state == "standby"
