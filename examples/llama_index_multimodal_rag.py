"""LlamaIndex: multimodal RAG over images and text, answered by Janus-Pro.

    JANUS_BASE_URL=http://127.0.0.1:7860 python examples/llama_index_multimodal_rag.py ["QUESTION"]

Image nodes (with captions) and text nodes share one vector index; the query engine built
with ``multimodal=True`` retrieves both and sends the passages and the images to the LLM.
The Space reads exactly one image per question. LlamaIndex packs one image per LLM call here
(the best-ranked first, each further image in a refine call), so every retrieved image is
looked at; if several images ever land in one call, ``JanusPro`` sends the first and reports
the others (printed below as a note). The embedding is a toy (hashed bag of words over
captions and text) so this runs offline; use a real (multimodal) embedding model in practice.
The pictures are drawn here, so no files are needed.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.schema import ImageNode, TextNode
from PIL import Image, ImageDraw

from janus_space import ImagesDroppedWarning
from llama_index_janus import JanusPro

PICTURES = {  # file name: (size, shape drawer, caption)
    "circle.png": ((120, 90), "ellipse", "red", "A picture of a red circle."),
    "square.png": ((100, 100), "rectangle", "blue", "A picture of a blue square."),
    "bar.png": ((140, 70), "rectangle", "green", "A picture of a green bar."),
}
TEXTS = [
    "Circles in the catalogue are drawn on white paper with a thick brush.",
    "Squares in the catalogue are printed, never painted.",
]


class HashingEmbedding(BaseEmbedding):
    """A toy offline embedding: words hashed into 256 buckets, L2-normalised."""

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * 256
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % 256] += 1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)


def draw_pictures(folder: Path) -> list[ImageNode]:
    """Draw each picture into ``folder``; one captioned ImageNode per picture."""
    nodes = []
    for name, (size, shape, colour, caption) in PICTURES.items():
        picture = Image.new("RGB", size, "white")
        box = (size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4)
        getattr(ImageDraw.Draw(picture), shape)(box, fill=colour)
        path = folder / name
        picture.save(path)
        nodes.append(ImageNode(image_path=str(path), text=caption, metadata={"file": name}))
    return nodes


def main() -> None:
    question = sys.argv[1] if len(sys.argv) > 1 else "What colour is the circle?"
    folder = Path(tempfile.mkdtemp(prefix="janus-rag-"))
    nodes = [*draw_pictures(folder), *(TextNode(text=text) for text in TEXTS)]
    index = VectorStoreIndex(nodes, embed_model=HashingEmbedding())
    # LlamaIndex counts 2125 tokens per image: a wider window lets each image share a call
    # with its caption (the default is sized for text; see JanusPro.context_window).
    with JanusPro(base_url=os.environ.get("JANUS_BASE_URL"), context_window=3300) as llm:
        engine = index.as_query_engine(llm=llm, multimodal=True, similarity_top_k=2)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ImagesDroppedWarning)
            response = engine.query(question)
    print("answer:", response)
    for node in response.source_nodes:
        kind = "image" if isinstance(node.node, ImageNode) else "text"
        print(f"source {kind} ({node.score:.2f}): {node.node.get_content()}")
    for warning in caught:
        if issubclass(warning.category, ImagesDroppedWarning):
            print("note:", warning.message)


if __name__ == "__main__":
    main()
