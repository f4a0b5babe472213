"""AGI adapters for the IVR: FastAGI server, AGI protocol, ``Channel`` over AGI, classic AGI.

Composition root::

    from ivr.agi import AgiChannel, FastAgiServer

    server = FastAgiServer(s.agi_host, s.agi_port, header_timeout=s.agi_header_timeout,
                           command_timeout=s.agi_command_timeout)

    async def handle_ivr(session):            # agi://host/ivr?flow=main
        await ivr_service.run(AgiChannel(session))

    server.add_route("ivr", handle_ivr)
    await server.start()
    ...
    await server.close(grace=s.agi_shutdown_grace)
"""

from ivr.agi.channel import AgiChannel
from ivr.agi.protocol import (
    AgiConnectionClosed,
    AgiError,
    AgiHangup,
    AgiInvalidCommand,
    AgiProtocolError,
    AgiResult,
    AgiTimeout,
    AgiUsageError,
    ChannelHungUp,
    format_command,
)
from ivr.agi.server import AgiSession, FastAgiServer

__all__ = [
    "AgiChannel",
    "AgiConnectionClosed",
    "AgiError",
    "AgiHangup",
    "AgiInvalidCommand",
    "AgiProtocolError",
    "AgiResult",
    "AgiSession",
    "AgiTimeout",
    "AgiUsageError",
    "ChannelHungUp",
    "FastAgiServer",
    "format_command",
]
