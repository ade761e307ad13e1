"""LangChain: stream an answer and watch the Space's queue position and progress as it comes.

    JANUS_BASE_URL=http://127.0.0.1:7860 python examples/langchain_streaming.py ["QUESTION"]

On ZeroGPU a call can wait in a queue before it runs. ChatJanus reports the queue position,
the start, progress steps and the app's log lines as LangChain custom events named
``langchain_janus.STATUS_EVENT``; ``astream_events`` delivers them in order with the answer.
The Space sends its answer in one piece (it does not stream tokens), so the answer arrives as
one chunk at the end. (Against the replica, put "[slow:5]" in the question to see progress.)
"""

from __future__ import annotations

import asyncio
import os
import sys

from langchain_core.prompts import ChatPromptTemplate

from langchain_janus import STATUS_EVENT, ChatJanus


def describe(status: dict[str, object]) -> str:
    """One line for a status payload (``{"status": "queued", "rank": 0, ...}``)."""
    kind = status["status"]
    if kind == "queued":
        return f"queued: position {status.get('rank')} of {status.get('queue_size')}"
    if kind == "progress":
        return f"progress: {status.get('desc')} {status.get('index')}/{status.get('length')}"
    if kind == "log":
        return f"log: {status.get('message')}"
    return str(kind)


async def main() -> None:
    question = sys.argv[1] if len(sys.argv) > 1 else "Write a haiku about a lighthouse."
    llm = ChatJanus(base_url=os.environ.get("JANUS_BASE_URL"))
    chain = ChatPromptTemplate.from_messages([("human", "{question}")]) | llm
    async for event in chain.astream_events({"question": question}, version="v2"):
        if event["event"] == "on_custom_event" and event["name"] == STATUS_EVENT:
            print(f"[status] {describe(event['data'])}", flush=True)
        elif event["event"] == "on_chat_model_stream":
            print(f"[chunk] {event['data']['chunk'].text}", flush=True)
        elif event["event"] == "on_chat_model_end":
            print(f"[done] {event['data']['output'].response_metadata.get('duration')}")
    await llm.aclose()


if __name__ == "__main__":
    asyncio.run(main())
