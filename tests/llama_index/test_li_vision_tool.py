"""JanusPro.image_question_tool beside image_generation_tool: eyes and a brush for agents.

The ReAct agent's reasoning LLM is scripted (Janus cannot plan tool calls); the agent loop,
both tools, their shared image shelf and the Space calls are real. The replica's answers
report the image size and the question that reached it.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from li_support import make_png
from llama_index.core.agent.workflow import ReActAgent, ToolCallResult
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.bridge.pydantic import Field
from llama_index.core.llms.callbacks import llm_chat_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.core.tools import FunctionTool

from janus_space import InvalidInputError
from janus_space.image_refs import ImageReferenceError
from janus_space.replica import parse_understanding_report, read_generation_report
from llama_index_janus import JanusPro, shared_images

NOWHERE = "http://127.0.0.1:9"  # nothing listens: a test using it proves no request was made


class ScriptedReasoner(CustomLLM):
    """Plays fixed ReAct turns and records what it was sent (stands in for the planner)."""

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


def react(action: str, arguments: str) -> str:
    return (
        "Thought: I need to use a tool to help me answer the question.\n"
        f"Action: {action}\nAction Input: {arguments}"
    )


# Warnings from inside LlamaIndex's agent workflow (it inspects pydantic models with
# inspect.getmembers, and its ReAct step calls the deprecated ctx.is_running); not ours.
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecationWarning")
@pytest.mark.filterwarnings("ignore:is_running called from within a step:DeprecationWarning")
async def test_a_react_agent_draws_then_asks_about_the_picture_by_its_id(llm: JanusPro) -> None:
    brush, eyes = llm.image_generation_tool(), llm.image_question_tool()
    reasoner = ScriptedReasoner(
        replies=[
            react("generate_image", '{"prompt": "a paper boat", "seed": 8}'),
            react("ask_about_image", '{"image": "img-3", "question": "Is the boat red?"}'),
            "Thought: I can answer without using any more tools.\nAnswer: A white paper boat.",
        ]
    )
    agent = ReActAgent(tools=[brush, eyes], llm=reasoner, streaming=False)
    handler = agent.run(user_msg="Draw a paper boat and tell me its colour.")
    results = [e async for e in handler.stream_events() if isinstance(e, ToolCallResult)]
    answer = await handler

    drawn, answered = (result.tool_output for result in results)
    assert drawn.content.endswith("Image ids: img-1, img-2, img-3, img-4, img-5."), drawn.content
    report = parse_understanding_report(answered.content)
    assert (report.width, report.height, report.question) == (384, 384, "Is the boat red?")
    observation = reasoner.seen[1][-1].content or ""
    assert observation.startswith("Observation: Generated 5 image(s)") and "img-3" in observation
    assert reasoner.seen[2][-1].content == f"Observation: {answered.content}"
    assert "A white paper boat." in str(answer)
    third = shared_images(llm).get("img-3")
    assert not isinstance(third, str) and read_generation_report(third.data).index == 2


async def test_the_tool_asks_about_an_added_picture_and_a_data_url(llm: JanusPro) -> None:
    eyes = llm.image_question_tool(name="look")
    assert isinstance(eyes, FunctionTool) and eyes.metadata.name == "look"
    schema = eyes.metadata.get_parameters_dict()
    assert schema["required"] == ["image", "question"]
    picture = shared_images(llm).add(make_png(90, 60))
    by_id = await eyes.acall(image=picture, question="How wide?")
    data_url = "data:image/png;base64," + base64.b64encode(make_png(50, 70)).decode()
    by_data = eyes.call(image=data_url, question="How tall?")  # the sync path
    sizes = [
        (r.width, r.height, r.question)
        for r in (parse_understanding_report(o.content) for o in (by_id, by_data))
    ]
    assert sizes == [(90, 60, "How wide?"), (50, 70, "How tall?")]


async def test_bad_references_fail_before_any_request() -> None:
    llm = JanusPro(base_url=NOWHERE)
    eyes = llm.image_question_tool()
    with pytest.raises(ImageReferenceError, match=r"there is no image 'img-1' \(known ids: none"):
        await eyes.acall(image="img-1", question="What is it?")
    with pytest.raises(ImageReferenceError, match="local files are not allowed"):
        await eyes.acall(image="/etc/hostname", question="What is it?")
    with pytest.raises(InvalidInputError, match="question is empty"):
        eyes.call(image="https://example.com/a.png", question=" ")
    assert shared_images(llm) is shared_images(llm)
    assert shared_images(JanusPro(base_url=NOWHERE)) is not shared_images(llm)
    await llm.aclose()
    llm.close()


@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecationWarning")
@pytest.mark.filterwarnings("ignore:is_running called from within a step:DeprecationWarning")
async def test_a_bad_reference_comes_back_to_the_agent_as_the_observation() -> None:
    llm = JanusPro(base_url=NOWHERE)
    reasoner = ScriptedReasoner(
        replies=[
            react("ask_about_image", '{"image": "img-7", "question": "What is it?"}'),
            "Thought: I can answer without using any more tools.\nAnswer: No such picture.",
        ]
    )
    agent = ReActAgent(tools=[llm.image_question_tool()], llm=reasoner, streaming=False)
    handler = agent.run(user_msg="What is in img-7?")
    results = [e async for e in handler.stream_events() if isinstance(e, ToolCallResult)]
    await handler
    (result,) = results
    assert result.tool_output.is_error
    assert "there is no image 'img-7'" in (reasoner.seen[1][-1].content or "")
    await llm.aclose()
    llm.close()
