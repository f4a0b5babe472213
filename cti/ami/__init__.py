"""Asterisk Manager Interface adapter: framing, client, typed events, action factories.

Public surface::

    from cti.ami import AmiClient, actions, events
    from cti.ami import AmiError, AmiActionError, AmiTimeout, AmiNotConnected, AmiAuthError
"""

from cti.ami import actions, events
from cti.ami.actions import (
    Action,
    AmiActionError,
    AmiAuthError,
    AmiError,
    AmiNotConnected,
    AmiResponse,
    AmiTimeout,
    AmiValueError,
)
from cti.ami.client import AmiClient, AmiResyncError, backoff_delay
from cti.ami.events import CONSUMED_EVENTS, AmiEvent, translate
from cti.ami.protocol import AmiFrameParser, AmiProtocol, FrameStats

__all__ = [
    "Action",
    "AmiActionError",
    "AmiAuthError",
    "AmiClient",
    "AmiError",
    "AmiEvent",
    "AmiFrameParser",
    "AmiNotConnected",
    "AmiProtocol",
    "AmiResponse",
    "AmiResyncError",
    "AmiTimeout",
    "AmiValueError",
    "CONSUMED_EVENTS",
    "FrameStats",
    "actions",
    "backoff_delay",
    "events",
    "translate",
]
