"""janus_space: an async client for DeepSeek's Janus-Pro-7B Hugging Face Space.

Understanding (image + question → answer) and generation (prompt → five images), with typed
events and errors. No framework imports: ``langchain_janus`` and ``llama_index_janus`` build on it.
"""

from typing import TYPE_CHECKING

from .auth import Secret
from .backend import Capabilities, JanusBackend
from .client import SPACE_CAPABILITIES, JanusClient
from .errors import (
    AccessDeniedError,
    AppError,
    GPUUnavailableError,
    HistoryTrimmedWarning,
    ImageNotDownscaledWarning,
    ImagesDroppedWarning,
    InvalidInputError,
    JanusConnectionError,
    JanusError,
    JanusTimeoutError,
    JanusWarning,
    MissingImageError,
    PromptTooLongError,
    ProtocolError,
    QueueFullError,
    QuotaExceededError,
    RateLimitedError,
    ResultUnavailableError,
    SpaceUnavailableError,
)
from .events import (
    Failover,
    GeneratedImage,
    GenerationResult,
    Heartbeat,
    Log,
    Progress,
    Queued,
    Started,
    StatusEvent,
    TextDelta,
    UnderstandingResult,
)
from .media import ImageData, ImageInput, load_image
from .options import (
    DEFAULT_SPACE,
    GENERATION_DEFAULTS,
    UNDERSTANDING_DEFAULTS,
    SpaceOptions,
    Timeouts,
)
from .prompt import (
    DEFAULT_TOKEN_BUDGET,
    Message,
    PreparedPrompt,
    estimate_conversation_tokens,
    flatten_conversation,
)
from .reuse import MemoryCache, ResultCache, SQLiteCache
from .runtime import BackendHandle, ClientPerLoop, LoopBound, LoopThread
from .tokens import estimate_tokens

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SPACE",
    "DEFAULT_TOKEN_BUDGET",
    "GENERATION_DEFAULTS",
    "SPACE_CAPABILITIES",
    "UNDERSTANDING_DEFAULTS",
    "AccessDeniedError",
    "AppError",
    "BackendHandle",
    "Capabilities",
    "ClientPerLoop",
    "Failover",
    "GPUUnavailableError",
    "GeneratedImage",
    "GenerationResult",
    "Heartbeat",
    "HistoryTrimmedWarning",
    "HubError",
    "ImageData",
    "ImageInput",
    "ImageNotDownscaledWarning",
    "ImagesDroppedWarning",
    "InvalidInputError",
    "JanusBackend",
    "JanusClient",
    "JanusConnectionError",
    "JanusError",
    "JanusPool",
    "JanusTimeoutError",
    "JanusWarning",
    "Log",
    "LoopBound",
    "LoopThread",
    "MemoryCache",
    "Message",
    "MissingImageError",
    "PreparedPrompt",
    "Progress",
    "PromptTooLongError",
    "ProtocolError",
    "QueueFullError",
    "Queued",
    "QuotaExceededError",
    "RateLimitedError",
    "ResultCache",
    "ResultUnavailableError",
    "SQLiteCache",
    "Secret",
    "SpaceOptions",
    "SpaceStatus",
    "SpaceUnavailableError",
    "Started",
    "StatusEvent",
    "TextDelta",
    "Timeouts",
    "UnderstandingResult",
    "__version__",
    "aspace_status",
    "duplicate_space",
    "estimate_conversation_tokens",
    "estimate_tokens",
    "flatten_conversation",
    "load_image",
    "space_status",
]

# The pool and the Hub helpers load on first use: ``import janus_space`` stays light.
_LAZY = {
    "JanusPool": "pool",
    "HubError": "hub",
    "SpaceStatus": "hub",
    "aspace_status": "hub",
    "duplicate_space": "hub",
    "space_status": "hub",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'janus_space' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .hub import HubError, SpaceStatus, aspace_status, duplicate_space, space_status
    from .pool import JanusPool
