"""janus_space: an async client for DeepSeek's Janus-Pro-7B Hugging Face Space.

Understanding (image + question → answer) and generation (prompt → five images), with typed
events and errors. No framework imports: ``langchain_janus`` and ``llama_index_janus`` build on it.
"""

from .auth import Secret
from .client import DEFAULT_SPACE, JanusClient
from .errors import (
    AppError,
    GPUUnavailableError,
    HistoryTrimmedWarning,
    ImagesDroppedWarning,
    InvalidInputError,
    JanusConnectionError,
    JanusError,
    JanusTimeoutError,
    JanusWarning,
    MissingImageError,
    ProtocolError,
    QueueFullError,
    QuotaExceededError,
    RateLimitedError,
    ResultUnavailableError,
    SpaceUnavailableError,
)
from .events import (
    GeneratedImage,
    GenerationResult,
    Heartbeat,
    Log,
    Progress,
    Queued,
    Started,
    StatusEvent,
    UnderstandingResult,
)
from .media import ImageData, ImageInput, load_image
from .prompt import DEFAULT_TOKEN_BUDGET, Message, PreparedPrompt, flatten_conversation
from .runtime import ClientPerLoop, LoopThread

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SPACE",
    "DEFAULT_TOKEN_BUDGET",
    "AppError",
    "ClientPerLoop",
    "GPUUnavailableError",
    "GeneratedImage",
    "GenerationResult",
    "Heartbeat",
    "HistoryTrimmedWarning",
    "ImageData",
    "ImageInput",
    "ImagesDroppedWarning",
    "InvalidInputError",
    "JanusClient",
    "JanusConnectionError",
    "JanusError",
    "JanusTimeoutError",
    "JanusWarning",
    "Log",
    "LoopThread",
    "Message",
    "MissingImageError",
    "PreparedPrompt",
    "Progress",
    "ProtocolError",
    "QueueFullError",
    "Queued",
    "QuotaExceededError",
    "RateLimitedError",
    "ResultUnavailableError",
    "Secret",
    "SpaceUnavailableError",
    "Started",
    "StatusEvent",
    "UnderstandingResult",
    "__version__",
    "flatten_conversation",
    "load_image",
]
