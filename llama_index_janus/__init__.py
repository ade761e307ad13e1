"""LlamaIndex integration of DeepSeek's Janus-Pro-7B Hugging Face Space.

``JanusPro`` is a chat LLM that reads ``ImageBlock``s (and the legacy multimodal
``complete(prompt, image_documents)``), generates images, and offers an image-generation
``FunctionTool``; queue and progress updates arrive as ``JanusStatusEvent``s.
"""

from ._events import JanusStatusEvent
from ._tools import DEFAULT_TOOL_DESCRIPTION, make_image_generation_tool
from .base import CONTEXT_WINDOW, NUM_OUTPUT, JanusPro

__all__ = [
    "CONTEXT_WINDOW",
    "DEFAULT_TOOL_DESCRIPTION",
    "NUM_OUTPUT",
    "JanusPro",
    "JanusStatusEvent",
    "make_image_generation_tool",
]
