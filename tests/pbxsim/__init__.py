"""PBX emulator: plays Asterisk 20's part (AMI server, FastAGI client, dialplan, queues) over real sockets.

Public API (see README.md)::

    from tests.pbxsim import Pbx, PbxConfig, QueueConfig, AgentBehavior, Wait, Press, Hangup
"""

from .model import AgentBehavior, PbxConfig, QueueConfig, default_queues
from .pbx import AgentHandle, AwaitPrompt, Call, Event, Hangup, Pbx, Press, Wait
from .ami import load_manager_filters, load_manager_user

__all__ = [
    "AgentBehavior",
    "AgentHandle",
    "AwaitPrompt",
    "Call",
    "Event",
    "Hangup",
    "Pbx",
    "PbxConfig",
    "Press",
    "QueueConfig",
    "Wait",
    "default_queues",
    "load_manager_filters",
    "load_manager_user",
]
