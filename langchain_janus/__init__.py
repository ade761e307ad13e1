"""langchain_janus: DeepSeek Janus-Pro-7B (its Hugging Face Space) for LangChain.

``ChatJanus`` is the chat model (image understanding, or image generation with
``model="janus-pro-7b-image"``); ``JanusImageGenerator`` is the image-generation tool for
agents, and ``JanusImageQuestion`` the image-question tool beside it (sharing an
``ImageShelf`` of images by id). Status events (queue position, progress, logs) arrive as
custom events named ``STATUS_EVENT``.
"""

try:
    import langchain_core  # noqa: F401 - only to name the missing extra
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "langchain_janus needs the 'langchain' extra: pip install 'janus-space[langchain]'"
    ) from exc


from ._events import STATUS_EVENT
from .chat_models import GENERATION_MODEL, UNDERSTANDING_MODEL, ChatJanus
from .tools import (
    ImageShelf,
    JanusImageGenerator,
    JanusImageGeneratorInput,
    JanusImageQuestion,
    JanusImageQuestionInput,
)

__all__ = [
    "GENERATION_MODEL",
    "STATUS_EVENT",
    "UNDERSTANDING_MODEL",
    "ChatJanus",
    "ImageShelf",
    "JanusImageGenerator",
    "JanusImageGeneratorInput",
    "JanusImageQuestion",
    "JanusImageQuestionInput",
]
