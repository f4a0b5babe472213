"""uvicorn's HTTP protocol without the reference cycle a websocket upgrade leaves (issue 18, round five).

On a websocket upgrade uvicorn's ``HttpToolsProtocol`` hands the transport to the websocket
protocol and is dropped — but it is in a cycle with its ``httptools`` parser (the parser holds
six bound methods of the protocol as callbacks), with its ``FlowControl``, ``Event``, deques and
request dicts: ~14 objects per connected desk that only the cyclic collector frees. While desks
log in by the thousand the GC freezer (``callcore/gctune.py``) freezes the heap several times,
and every upgraded protocol still waiting for a collection is frozen with it: 1,066–1,247 of
2,000 in the pop benchmark, 18–26 k frozen garbage objects that only the (hourly) thaw's walk
of the whole heap reclaims, and that count as heap growth for its trigger.
:class:`UpgradeFreeingHttpProtocol` drops the parser once the upgrade is done — nothing reads
it afterwards (the transport now feeds the websocket protocol) — so reference counting frees
the old protocol at once.
"""

from __future__ import annotations

from typing import Any


def http_protocol() -> Any:
    """The protocol class for ``uvicorn.Config(http=...)``; ``"auto"`` without httptools."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency of uvicorn[standard]
        return "auto"

    class UpgradeFreeingHttpProtocol(HttpToolsProtocol):
        def handle_websocket_upgrade(self) -> None:
            super().handle_websocket_upgrade()
            # the cycle protocol -> parser -> bound methods -> protocol: cut it, the upgrade is over
            self.parser = None  # type: ignore[assignment]
            self.flow = None  # type: ignore[assignment]

    return UpgradeFreeingHttpProtocol
