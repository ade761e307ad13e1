"""LangChain: an agent with a brush and eyes — it draws with Janus, then asks Janus about it.

    JANUS_BASE_URL=http://127.0.0.1:7860 python examples/langchain_eyes_and_brush.py ["SUBJECT"]

Honest note: the *planner* here is scripted. Janus-Pro cannot call tools (the Space returns
plain text), so the agent's planner would normally be a tool-calling model on your side (a
local Llama through Ollama, say). To run offline and deterministically, ``ScriptedPlanner``
(a langchain-core chat model) follows a fixed three-step plan — draw, ask about the first
picture by the id the drawing tool returned, answer — emitting exactly the tool-calling
``AIMessage``s such a model would. The LangGraph loop (model node, ``ToolNode``, the
``tools_condition`` edge), both tools, their shared image shelf and the calls to Janus are
real. Swap in ``ChatOllama(...)`` (or any model with ``bind_tools``) and nothing else changes.
"""

from __future__ import annotations

import base64
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from langchain_janus import JanusImageGenerator, JanusImageQuestion

QUESTION = "What is the main colour of this picture?"


class ScriptedPlanner(BaseChatModel):
    """A stand-in for a tool-calling model: draw, look at the first picture by id, answer."""

    @property
    def _llm_type(self) -> str:
        return "scripted-planner"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedPlanner:
        return self  # the plan below already names the two tools

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        last = messages[-1]
        if isinstance(last, HumanMessage):  # step 1: draw what was asked for
            step = AIMessage(
                "", tool_calls=[_call("janus_image_generator", {"prompt": last.text}, "draw")]
            )
        elif isinstance(last, ToolMessage) and last.name == "janus_image_generator":
            ids = re.findall(r"img-\d+", last.text)  # step 2: look, by the id the tool gave
            args = {"image": ids[0], "question": QUESTION}
            step = AIMessage("", tool_calls=[_call("janus_image_question", args, "look")])
        else:  # step 3: answer with what Janus saw
            step = AIMessage(f"I drew it; asked about it, Janus says: {last.text}")
        return ChatResult(generations=[ChatGeneration(message=step)])


def _call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def build_agent(brush: JanusImageGenerator, eyes: JanusImageQuestion) -> Any:
    """The usual LangGraph tool loop: the planner calls tools until it answers."""
    planner = ScriptedPlanner().bind_tools([brush, eyes])

    def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [planner.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([brush, eyes]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


def main() -> None:
    subject = sys.argv[1] if len(sys.argv) > 1 else "a red kite over a green hill"
    brush = JanusImageGenerator(base_url=os.environ.get("JANUS_BASE_URL"), max_images=2)
    eyes = JanusImageQuestion.beside(brush)  # same Space settings, same image shelf
    with brush, eyes:
        result = build_agent(brush, eyes).invoke({"messages": [HumanMessage(subject)]})
    folder = Path(tempfile.mkdtemp(prefix="janus-eyes-and-brush-"))
    for message in result["messages"]:
        if isinstance(message, ToolMessage):
            print(f"tool {message.name}: {message.text}")
            for block in message.artifact or []:
                path = folder / f"{block['id']}.{block['mime_type'].split('/')[-1]}"
                path.write_bytes(base64.b64decode(block["base64"]))
                print(f"saved: {path}")
    print(f"agent: {result['messages'][-1].text}")


if __name__ == "__main__":
    main()
