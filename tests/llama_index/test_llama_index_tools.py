"""Image generation for LlamaIndex users: the methods, the FunctionTool, and a ReAct agent."""

from __future__ import annotations

from typing import Any

import pytest
from li_support import EventRecorder
from llama_index.core.agent.workflow import ReActAgent, ToolCallResult
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    CompletionResponseGen,
    ImageBlock,
    LLMMetadata,
    TextBlock,
)
from llama_index.core.bridge.pydantic import Field
from llama_index.core.llms.callbacks import llm_chat_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.core.tools import FunctionTool, ToolOutput

from janus_space import InvalidInputError
from janus_space.replica import prompt_checksum, read_generation_report
from llama_index_janus import JanusPro, JanusStatusEvent


def reports(blocks: list[ImageBlock]) -> list[Any]:
    return [read_generation_report(block.resolve_image().read()) for block in blocks]


def test_generate_images(llm: JanusPro, events: EventRecorder) -> None:
    images = llm.generate_images("a red fox in the snow [slow:1]", seed=7)
    assert len(images) == 5
    assert {image.image_mimetype for image in images} == {"image/webp"}
    decoded = reports(images)
    assert [r.index for r in decoded] == [0, 1, 2, 3, 4]
    assert {(r.seed, r.guidance, r.temperature) for r in decoded} == {(7, 5.0, 1.0)}
    assert {r.prompt_crc32 for r in decoded} == {prompt_checksum("a red fox in the snow [slow:1]")}
    statuses = events.of(JanusStatusEvent)
    assert statuses and {event.task for event in statuses} == {"generation"}
    assert "progress" in {event.kind for event in statuses}


async def test_agenerate_images_uses_fields_and_overrides(llm: JanusPro) -> None:
    llm.image_seed, llm.image_temperature = 99, 0.5
    decoded = reports(await llm.agenerate_images("a blue whale", guidance=2.5))
    assert {(r.seed, r.guidance, r.temperature) for r in decoded} == {(99, 2.5, 0.5)}


async def test_generation_bad_input_is_typed() -> None:
    llm = JanusPro(base_url="http://127.0.0.1:9")  # nothing listens: no request may be made
    with pytest.raises(InvalidInputError, match="guidance"):
        await llm.agenerate_images("a cat", guidance=50)
    with pytest.raises(InvalidInputError, match="prompt"):
        await llm.agenerate_images("   ")
    with pytest.raises(InvalidInputError, match="seed"):
        llm.image_generation_tool().call(prompt="a cat", seed=-1)
    await llm.aclose()
    llm.close()


def check_tool_output(output: ToolOutput, prompt: str) -> None:
    text, *images = output.blocks
    assert isinstance(text, TextBlock)
    assert "Generated 5 image(s) (image/webp)" in text.text and repr(prompt) in text.text
    assert output.content == text.text  # what an agent reads as the observation
    assert len(images) == 5 and all(isinstance(image, ImageBlock) for image in images)
    assert {r.prompt_crc32 for r in reports(images)} == {prompt_checksum(prompt)}  # type: ignore[arg-type]
    assert not output.is_error


async def test_tool_called_directly_async(llm: JanusPro) -> None:
    tool = llm.image_generation_tool()
    assert isinstance(tool, FunctionTool)
    assert tool.metadata.name == "generate_image"
    schema = tool.metadata.get_parameters_dict()
    assert schema["required"] == ["prompt"]
    assert set(schema["properties"]) == {"prompt", "seed"}
    output = await tool.acall(prompt="a lighthouse at dusk", seed=3)
    check_tool_output(output, "a lighthouse at dusk")
    assert {r.seed for r in reports(output.blocks[1:])} == {3}  # type: ignore[arg-type]


def test_tool_called_directly_sync(llm: JanusPro) -> None:
    output = llm.image_generation_tool(name="draw").call(prompt="a paper boat")
    check_tool_output(output, "a paper boat")


class ScriptedReActLLM(CustomLLM):
    """Plays fixed ReAct turns and records what it was sent (stands in for the reasoning LLM)."""

    replies: list[str]
    seen: list[list[ChatMessage]] = Field(default_factory=list)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_chat_model=True, model_name="scripted")

    @llm_chat_callback()
    async def achat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        self.seen.append(list(messages))
        return ChatResponse(message=ChatMessage(role="assistant", content=self.replies.pop(0)))

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raise NotImplementedError

    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        raise NotImplementedError


# Warnings from inside LlamaIndex's agent workflow (it inspects pydantic models with
# inspect.getmembers, and its ReAct step calls the deprecated ctx.is_running); not ours.
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecationWarning")
@pytest.mark.filterwarnings("ignore:is_running called from within a step:DeprecationWarning")
async def test_react_agent_sees_a_text_observation_and_gets_the_images(llm: JanusPro) -> None:
    reasoner = ScriptedReActLLM(
        replies=[
            "Thought: I need to use a tool to help me answer the question.\n"
            "Action: generate_image\n"
            'Action Input: {"prompt": "a red fox", "seed": 5}',
            "Thought: I can answer without using any more tools.\nAnswer: Here are five foxes.",
        ]
    )
    agent = ReActAgent(tools=[llm.image_generation_tool()], llm=reasoner, streaming=False)
    handler = agent.run(user_msg="Draw me a red fox.")
    results = [
        event async for event in handler.stream_events() if isinstance(event, ToolCallResult)
    ]
    answer = await handler
    assert "Here are five foxes." in str(answer)

    (result,) = results
    check_tool_output(result.tool_output, "a red fox")
    observation = reasoner.seen[1][-1].content or ""
    assert observation.startswith("Observation: Generated 5 image(s)")
