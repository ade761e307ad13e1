"""janus_space: an async client for DeepSeek's Janus-Pro-7B Hugging Face Space.

Understanding (image + question → answer) and generation (prompt → five images), with typed
events and errors. No framework imports: ``langchain_janus`` and ``llama_index_janus`` build on it.
"""

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
from .hub import HubError, SpaceStatus, aspace_status, duplicate_space, space_status
from .media import ImageData, ImageInput, load_image
from .options import (
    DEFAULT_SPACE,
    GENERATION_DEFAULTS,
    UNDERSTANDING_DEFAULTS,
    SpaceOptions,
    Timeouts,
)
from .pool import JanusPool
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
