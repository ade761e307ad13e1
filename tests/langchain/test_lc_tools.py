"""JanusImageGenerator as agents use it: called from a tool-calling loop, images as the artifact.

Janus has no tool calling of its own, so a fake tool-calling model from langchain-core decides
to call the tool, in a LangGraph graph wired like a ReAct agent (model node, ToolNode, a
condition). The generated picture is then handed to ChatJanus to describe.
"""

from __future__ import annotations

import base64
from typing import Any

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from lc_support import check_slow_steps

from janus_space.replica import parse_understanding_report, prompt_checksum, read_generation_report
from langchain_janus import STATUS_EVENT, ChatJanus, JanusImageGenerator

PROMPT = "a lighthouse at dusk, oil painting"


def _tool_call(tool: JanusImageGenerator, prompt: str) -> dict[str, Any]:
    return {"type": "tool_call", "id": "call_1", "name": tool.name, "args": {"prompt": prompt}}


async def test_the_tool_inside_a_tool_calling_agent_graph(space_url: str) -> None:
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    async with JanusImageGenerator(base_url=space_url, seed=3, max_images=2) as tool:
        fake = GenericFakeChatModel(
            messages=iter(
                [
                    AIMessage("", tool_calls=[_tool_call(tool, PROMPT)]),
                    AIMessage("Here is your lighthouse."),
                ]
            )
        )

        def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
            return {"messages": [fake.invoke(state["messages"])]}

        graph = StateGraph(MessagesState)
        graph.add_node("agent", agent)
        graph.add_node("tools", ToolNode([tool]))
        graph.add_edge(START, "agent")
        graph.add_conditional_edges("agent", tools_condition)
        graph.add_edge("tools", "agent")
        app = graph.compile()
        result = await app.ainvoke({"messages": [HumanMessage("Paint me a lighthouse.")]})

    messages = result["messages"]
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    tool_message = messages[2]
    assert isinstance(tool_message, ToolMessage) and tool_message.status == "success"
    assert tool_message.content == (
        f"Generated 2 images for the prompt {PROMPT!r} (seed 3); they are attached for the user. "
        "Image ids: img-1, img-2."
    )
    assert [b["type"] for b in tool_message.artifact] == ["image", "image"]
    report = read_generation_report(base64.b64decode(tool_message.artifact[1]["base64"]))
    assert (report.index, report.seed, report.prompt_crc32) == (1, 3, prompt_checksum(PROMPT))
    assert messages[-1].text == "Here is your lighthouse."


async def test_generated_images_can_be_described_by_chat_janus(space_url: str) -> None:
    async with (
        JanusImageGenerator(base_url=space_url, max_images=1) as tool,
        ChatJanus(base_url=space_url) as llm,
    ):
        message = await tool.ainvoke(_tool_call(tool, "a red fox"))
        picture = message.artifact[0]
        reply = await llm.ainvoke(
            [HumanMessage([{"type": "text", "text": "Describe this picture."}, picture])]
        )
    report = parse_understanding_report(reply.text)
    # The Space draws 768x768; the core sends at most the 384 pixels Janus reads.
    assert (report.width, report.height, report.question) == (384, 384, "Describe this picture.")


def test_sync_tool_calls_and_plain_string_results(space_url: str) -> None:
    with JanusImageGenerator(base_url=space_url, max_images=1, guidance=2.0) as tool:
        message = tool.invoke(_tool_call(tool, "a blue bicycle"))
        text = tool.invoke({"prompt": "a blue bicycle"})  # called directly: the text part only
    assert isinstance(message, ToolMessage) and len(message.artifact) == 1
    assert read_generation_report(base64.b64decode(message.artifact[0]["base64"])).guidance == 2.0
    assert text.startswith("Generated 1 image for the prompt 'a blue bicycle'")


async def test_tool_progress_reaches_astream_events(space_url: str, space_tier: str) -> None:
    async with JanusImageGenerator(base_url=space_url, max_images=1) as tool:
        events = [
            e async for e in tool.astream_events(_tool_call(tool, "slowly [slow:3]"), version="v2")
        ]
    tool_run = next(e["run_id"] for e in events if e["event"] == "on_tool_start")
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert {e["name"] for e in custom} == {STATUS_EVENT}
    check_slow_steps([e["data"]["status"] for e in custom], space_tier)
    assert {e["run_id"] for e in custom} == {tool_run}
    assert {e["data"]["model"] for e in custom} == {"janus-pro-7b-image"}
