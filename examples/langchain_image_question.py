"""LangChain: an LCEL chain (prompt | ChatJanus | parser) that asks about an image.

    JANUS_BASE_URL=http://127.0.0.1:7860 python examples/langchain_image_question.py [IMAGE]

Without JANUS_BASE_URL it calls the public Space (its ZeroGPU quota; HF_TOKEN is used when
set). Janus-Pro has no system prompt and no memory: ChatJanus flattens the system message and
any history into the one question the Space takes, with the one image.
"""

from __future__ import annotations

import base64
import io
import mimetypes
import os
import sys
from pathlib import Path

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from PIL import Image, ImageDraw

from langchain_janus import ChatJanus


def image_as_base64(path: str | None) -> tuple[str, str]:
    """The image at ``path`` (or a drawn blue square) as (mime type, base64)."""
    if path:
        mime = mimetypes.guess_type(path)[0] or "image/png"
        return mime, base64.b64encode(Path(path).read_bytes()).decode()
    picture = Image.new("RGB", (200, 150), "white")
    ImageDraw.Draw(picture).rectangle((60, 35, 140, 115), fill="blue")
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return "image/png", base64.b64encode(buffer.getvalue()).decode()


def main() -> None:
    mime, data = image_as_base64(sys.argv[1] if len(sys.argv) > 1 else None)
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You answer in one short sentence."),
            (
                "human",
                [
                    {"type": "text", "text": "{question}"},
                    {"type": "image_url", "image_url": {"url": "data:{mime};base64,{image}"}},
                ],
            ),
        ]
    )
    llm = ChatJanus(base_url=os.environ.get("JANUS_BASE_URL"), temperature=0.2)
    chain = prompt | llm | StrOutputParser()
    answer = chain.invoke(
        {"question": "What shape is in this picture?", "mime": mime, "image": data}
    )
    print(answer)
    llm.close()


if __name__ == "__main__":
    main()
