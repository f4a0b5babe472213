"""How the domain packages are plugged together (called by ``callcore.app.Container``).

Kept apart from the container's lifecycle code so the container reads as
"what runs and in which order" and this file as "what talks to what".
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from callcore.app import Container

log = logging.getLogger("callcore.wiring")


async def build_services(c: "Container") -> None:
    return None


async def start_ami(c: "Container") -> None:
    return None


async def start_agi(c: "Container") -> None:
    return None


def routers(c: "Container") -> list[Any]:
    return []
