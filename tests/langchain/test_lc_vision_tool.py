"""JanusImageQuestion beside JanusImageGenerator: eyes and a brush for other models' agents.

The planner of the agent graph is langchain-core's scripted ``GenericFakeChatModel`` (Janus
cannot call tools); the graph, the tools, the shared image shelf and the Space calls are real.
The replica's answers report the image size and the question that reached it.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import ToolException
from lc_support import SAMPLE_B64, SAMPLE_URL, check_slow_steps
from PIL import Image

from janus_space.replica import parse_understanding_report, read_generation_report
from langchain_janus import STATUS_EVENT, ImageShelf, JanusImageGenerator, JanusImageQuestion

NOWHERE = "http://127.0.0.1:9"  # nothing listens: a test using it proves no request was made


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "orange").save(buffer, format="PNG")
    return buffer.getvalue()


def call(tool: Any, call_id: str = "call_1", **args: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": tool.name, "args": args}


class ScriptedPlanner(GenericFakeChatModel):
    """langchain-core's fake chat model, accepting tools like a tool-calling model would."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedPlanner:
        return self


async def test_an_agent_draws_then_asks_about_the_picture_by_its_id(space_url: str) -> None:
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    brush = JanusImageGenerator(base_url=space_url, seed=4, max_images=2)
    eyes = JanusImageQuestion.beside(brush)
    async with brush, eyes:
        planner = ScriptedPlanner(
            messages=iter(
                [
                    AIMessage("", tool_calls=[call(brush, prompt="a lighthouse at dusk")]),
                    AIMessage(
                        "",
                        tool_calls=[call(eyes, "call_2", image="img-2", question="Is it dark?")],
                    ),
                    AIMessage("Here is your lighthouse; Janus says it is dusk."),
                ]
            )
        ).bind_tools([brush, eyes])

        def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
            return {"messages": [planner.invoke(state["messages"])]}

        graph = StateGraph(MessagesState)
        graph.add_node("agent", agent)
        graph.add_node("tools", ToolNode([brush, eyes]))
        graph.add_edge(START, "agent")
        graph.add_conditional_edges("agent", tools_condition)
        graph.add_edge("tools", "agent")
        result = await graph.compile().ainvoke({"messages": [HumanMessage("Paint and look.")]})
        shelf_ids = eyes.images.ids()
        second = eyes.images.get("img-2")

    messages = result["messages"]
    drawn, answered = [m for m in messages if isinstance(m, ToolMessage)]
    assert drawn.content == (
        "Generated 2 images for the prompt 'a lighthouse at dusk' (seed 4); they are attached "
        "for the user. Image ids: img-1, img-2."
    )
    assert [block["id"] for block in drawn.artifact] == ["img-1", "img-2"]
    assert shelf_ids == ["img-1", "img-2"] and brush.images is eyes.images
    assert not isinstance(second, str)
    assert read_generation_report(second.data).index == 1  # img-2 is the second picture
    assert base64.b64decode(drawn.artifact[1]["base64"]) == second.data
    report = parse_understanding_report(answered.content)
    assert (report.width, report.height, report.question) == (384, 384, "Is it dark?")
    assert answered.status == "success"
    assert messages[-1].text == "Here is your lighthouse; Janus says it is dusk."


def test_the_users_own_pictures_by_id_url_data_url_and_allowed_path(
    space_url: str, tmp_path: Path
) -> None:
    (tmp_path / "wide.png").write_bytes(png(300, 100))
    with JanusImageQuestion(base_url=space_url, image_root=tmp_path) as eyes:
        (upload,) = eyes.remember(
            HumanMessage(
                [
                    {"type": "text", "text": "Here is my drawing."},
                    {
                        "type": "image",
                        "base64": base64.b64encode(png(200, 150)).decode(),
                        "mime_type": "image/png",
                    },
                ]
            )
        )
        by_id = eyes.invoke({"image": upload, "question": "What is it?"})
        by_url = eyes.invoke({"image": SAMPLE_URL, "question": "And this?"})
        data_url = "data:image/png;base64," + SAMPLE_B64
        by_data = eyes.invoke(call(eyes, image=data_url, question="And this one?"))
        by_path = eyes.invoke({"image": "wide.png", "question": "Wide?"})
    assert upload == "img-1"
    sizes = [
        (r.width, r.height, r.question)
        for r in map(parse_understanding_report, [by_id, by_url, by_data.content, by_path])
    ]
    assert sizes == [
        (200, 150, "What is it?"),
        (160, 120, "And this?"),
        (160, 120, "And this one?"),
        (300, 100, "Wide?"),  # within the 384 pixels Janus reads: sent as it is
    ]
    assert isinstance(by_data, ToolMessage) and by_data.status == "success"


@pytest.mark.parametrize(
    ("image", "question", "problem"),
    [
        ("img-3", "What is it?", r"there is no image 'img-3' \(known ids: img-1\)"),
        ("/etc/hostname", "What is it?", "local files are not allowed"),
        ("ftp://example.com/a.png", "What is it?", "scheme 'ftp' is not supported"),
        ("img-1", "   ", "the question is empty"),
    ],
)
def test_bad_references_come_back_to_the_agent_without_a_request(
    image: str, question: str, problem: str
) -> None:
    shelf = ImageShelf()
    shelf.add(png(10, 10))
    with JanusImageQuestion(base_url=NOWHERE, images=shelf) as eyes:
        message = eyes.invoke(call(eyes, image=image, question=question))
        assert isinstance(message, ToolMessage) and message.status == "error"
        assert re.search(problem, str(message.content)), message.content
        strict = JanusImageQuestion(base_url=NOWHERE, images=shelf, handle_tool_error=False)
        with strict, pytest.raises(ToolException, match=problem):
            strict.invoke({"image": image, "question": question})


def test_paths_outside_the_allowed_folder_are_refused(tmp_path: Path) -> None:
    inside = tmp_path / "inside"
    inside.mkdir()
    (tmp_path / "secret.png").write_bytes(png(8, 8))
    with JanusImageQuestion(base_url=NOWHERE, image_root=inside) as eyes:
        message = eyes.invoke(call(eyes, image="../secret.png", question="What is it?"))
    assert message.status == "error" and "outside the folder" in message.content


async def test_progress_of_a_question_reaches_astream_events(
    space_url: str, space_tier: str
) -> None:
    shelf = ImageShelf()
    picture = shelf.add(png(64, 48))
    async with JanusImageQuestion(base_url=space_url, images=shelf, seed=9) as eyes:
        events = [
            event
            async for event in eyes.astream_events(
                call(eyes, image=picture, question="Slowly [slow:3]"), version="v2"
            )
        ]
    tool_run = next(e["run_id"] for e in events if e["event"] == "on_tool_start")
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert {e["name"] for e in custom} == {STATUS_EVENT} and {e["run_id"] for e in custom} == {
        tool_run
    }
    assert {e["data"]["model"] for e in custom} == {"janus-pro-7b"}
    check_slow_steps([e["data"]["status"] for e in custom], space_tier)
    (end,) = [e for e in events if e["event"] == "on_tool_end"]
    report = parse_understanding_report(end["data"]["output"].content)
    assert (report.width, report.height, report.seed) == (64, 48, "9")


def test_beside_copies_the_connection_settings_and_shares_the_shelf() -> None:
    brush = JanusImageGenerator(base_url=NOWHERE, timeout=12.0, max_retries=0)
    eyes = JanusImageQuestion.beside(brush, temperature=0.3)
    assert (eyes.base_url, eyes.timeout, eyes.max_retries) == (NOWHERE, 12.0, 0)
    assert eyes.images is brush.images and eyes.temperature == 0.3
    assert eyes.model_copy().images is brush.images  # copies keep handing out valid ids
