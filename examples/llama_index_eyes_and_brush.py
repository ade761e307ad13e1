"""LlamaIndex: a ReAct agent with a brush and eyes — it draws with Janus, then asks Janus about it.

    JANUS_BASE_URL=http://127.0.0.1:7860 python examples/llama_index_eyes_and_brush.py ["SUBJECT"]

Honest note: the agent's *reasoning LLM* is scripted. Janus-Pro cannot plan tool calls (the
Space returns plain text), so the reasoner would normally be another LLM (a local Llama
through Ollama, say). To run offline and deterministically, ``ScriptedReasoner`` (a
LlamaIndex ``CustomLLM``) writes the ReAct turns such a model would — draw, ask about the
first picture by the id in the drawing tool's observation, answer. ReAct needs no function
calling, so LlamaIndex's real ``ReActAgent`` loop runs it: the loop, both ``FunctionTool``s
(from one ``JanusPro``, sharing its image shelf) and the calls to Janus are real. Swap in any
LLM as ``llm=`` and nothing else changes.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from llama_index.core.agent.workflow import ReActAgent, ToolCallResult
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.llms.callbacks import llm_chat_callback
from llama_index.core.llms.custom import CustomLLM

from llama_index_janus import JanusPro

QUESTION = "What is the main colour of this picture?"

# LlamaIndex 0.14's agent workflow trips deprecation warnings inside its own code (it inspects
# pydantic models with inspect.getmembers; its ReAct step reads ctx.is_running). Python hides
# them unless warnings are switched on; they are not this example's, so they stay quiet here.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(inspect|llama_index\.)")


class ScriptedReasoner(CustomLLM):
    """A stand-in for the reasoning LLM: fixed ReAct turns, reading the id it is given."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_chat_model=True, model_name="scripted-reasoner")

    def _turn(self, messages: Sequence[ChatMessage]) -> str:
        last = messages[-1].content or ""
        if not last.startswith("Observation:"):  # step 1: draw what was asked for
            return (
                "Thought: The user wants a picture; I will draw it.\n"
                "Action: generate_image\n"
                f'Action Input: {{"prompt": "{last.strip()}"}}'
            )
        ids = re.findall(r"img-\d+", last)
        if "Generated" in last and ids:  # step 2: look at it, by the id the tool gave
            return (
                "Thought: I will check what the first picture shows.\n"
                "Action: ask_about_image\n"
                f'Action Input: {{"image": "{ids[0]}", "question": "{QUESTION}"}}'
            )
        seen = last.removeprefix("Observation:").strip()  # step 3: answer
        return f"Thought: I can answer without using any more tools.\nAnswer: Janus says: {seen}"

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return ChatResponse(message=ChatMessage(role="assistant", content=self._turn(messages)))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self.chat(messages, **kwargs)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raise NotImplementedError("the reasoner only chats")

    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        raise NotImplementedError("the reasoner only chats")


async def main() -> None:
    subject = sys.argv[1] if len(sys.argv) > 1 else "a red kite over a green hill"
    async with JanusPro(base_url=os.environ.get("JANUS_BASE_URL")) as janus:
        tools = [janus.image_generation_tool(), janus.image_question_tool()]
        agent = ReActAgent(tools=tools, llm=ScriptedReasoner(), streaming=False)
        handler = agent.run(user_msg=subject)
        async for event in handler.stream_events():
            if isinstance(event, ToolCallResult):
                print(f"tool {event.tool_name}: {event.tool_output.content}")
        answer = await handler
    print(f"agent: {answer}")


if __name__ == "__main__":
    asyncio.run(main())
