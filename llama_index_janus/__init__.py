"""LlamaIndex integration of DeepSeek's Janus-Pro-7B Hugging Face Space.

``JanusPro`` is a chat LLM that reads ``ImageBlock``s (and the legacy multimodal
``complete(prompt, image_documents)``), generates images, answers ``structured_predict``
by prompting and validating (``JanusStructuredProgram``), and offers image-generation and
image-question ``FunctionTool``s that share images by id; queue and progress updates
arrive as ``JanusStatusEvent``s.
"""

try:
    import llama_index.core  # noqa: F401 - only to name the missing extra
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "llama_index_janus needs the 'llama-index' extra: pip install 'janus-space[llama-index]'"
    ) from exc


from ._events import JanusStatusEvent
from ._structured import JanusOutputParser, JanusStructuredProgram
from ._tools import (
    DEFAULT_QUESTION_TOOL_DESCRIPTION,
    DEFAULT_TOOL_DESCRIPTION,
    make_image_generation_tool,
    make_image_question_tool,
    shared_images,
)
from .base import CONTEXT_WINDOW, NUM_OUTPUT, JanusPro

__all__ = [
    "CONTEXT_WINDOW",
    "DEFAULT_QUESTION_TOOL_DESCRIPTION",
    "DEFAULT_TOOL_DESCRIPTION",
    "NUM_OUTPUT",
    "JanusOutputParser",
    "JanusPro",
    "JanusStatusEvent",
    "JanusStructuredProgram",
    "make_image_generation_tool",
    "make_image_question_tool",
    "shared_images",
]
