"""A local, stateful WizChat Management API on loopback (moto-style layers).

``state`` (data, optional SQLite persistence) → ``engine`` (apply semantics,
pure) → ``ratelimit`` / ``faults`` (policy) → ``app`` (thin Starlette HTTP) →
``server`` (in-process or subprocess) / ``cli`` (command line).

Never imported by the SDK's client modules: the SDK stays a thin httpx wrapper.
"""

from .server import EmulatorAdmin, EmulatorProcess, EmulatorServer
from .state import ALL_SCOPES, ApiKey, Chatbot, EmulatorState, Organization

__all__ = [
    "ALL_SCOPES",
    "ApiKey",
    "Chatbot",
    "EmulatorAdmin",
    "EmulatorProcess",
    "EmulatorServer",
    "EmulatorState",
    "Organization",
]
