"""LangChain: an agent loop that calls the Janus image-generation tool, then looks at a result.

    JANUS_BASE_URL=http://127.0.0.1:7860 python examples/langchain_agent.py ["REQUEST"]

Honest note: Janus-Pro cannot call tools (the Space returns plain text, with no function
calling), so it cannot be the agent's planner. Here the planner is a small rule (`plan`):
requests to draw become a tool call to ``JanusImageGenerator``, exactly the ``AIMessage``
with ``tool_calls`` a tool-calling model would produce. Swap in any tool-calling chat model
(``planner = SomeChatModel(...).bind_tools([tool])``) and the loop below stays the same.
Janus-Pro does what it can do: draw (the tool) and describe what it drew (ChatJanus).
"""

from __future__ import annotations

import base64
import os
import re
import sys
import tempfile
from pathlib import Path

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage

from langchain_janus import ChatJanus, JanusImageGenerator

BASE_URL = os.environ.get("JANUS_BASE_URL")
tool = JanusImageGenerator(base_url=BASE_URL, max_images=2)
vision = ChatJanus(base_url=BASE_URL)


def plan(messages: list[AnyMessage]) -> AIMessage:
    """The stand-in for a tool-calling model: draw when asked, then report on the result."""
    last = messages[-1]
    if isinstance(last, HumanMessage):
        wanted = re.match(r"(?i)\s*(?:please\s+)?(?:draw|paint|imagine)\s+(.+)", last.text)
        if wanted:
            call = {"name": tool.name, "args": {"prompt": wanted.group(1)}, "id": "call-1"}
            return AIMessage(content="", tool_calls=[call])
        return AIMessage(content=vision.invoke(messages).text)  # no tool needed: just answer
    if isinstance(last, ToolMessage) and last.artifact:
        first = last.artifact[0]  # a standard image block: {"type": "image", "base64": ...}
        look = HumanMessage(
            content=[{"type": "text", "text": "Describe this picture in one sentence."}, first]
        )
        return AIMessage(content=f"{last.content} The first one: {vision.invoke([look]).text}")
    return AIMessage(content=str(last.content))


def run_agent(request: str) -> list[AnyMessage]:
    """The usual tool loop: ask the planner, run the tools it calls, until it answers."""
    messages: list[AnyMessage] = [HumanMessage(request)]
    while True:
        reply = plan(messages)
        messages.append(reply)
        if not reply.tool_calls:
            return messages
        for call in reply.tool_calls:
            messages.append(tool.invoke({**call, "type": "tool_call"}))


def main() -> None:
    request = sys.argv[1] if len(sys.argv) > 1 else "Draw a red fox sleeping in the snow"
    messages = run_agent(request)
    folder = Path(tempfile.mkdtemp(prefix="janus-agent-"))
    for message in messages:
        if isinstance(message, ToolMessage):
            print(f"tool {message.name}: {message.content}")
            for number, block in enumerate(message.artifact or [], start=1):
                path = folder / f"image-{number}.{block['mime_type'].split('/')[-1]}"
                path.write_bytes(base64.b64decode(block["base64"]))
                print(f"saved: {path}")
    print(f"agent: {messages[-1].text}")
    tool.close()
    vision.close()


if __name__ == "__main__":
    main()
