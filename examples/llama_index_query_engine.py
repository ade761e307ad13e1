"""LlamaIndex: a query engine over a few documents, answered by Janus-Pro.

    JANUS_BASE_URL=http://127.0.0.1:7860 python examples/llama_index_query_engine.py ["QUESTION"]

The retrieved passages and the question are flattened into the one question the Space takes
(a text-only question goes with a neutral placeholder image, since the Space needs one).
The embedding here is a toy (hashed bag of words) so the example runs offline with nothing to
download; use a real embedding model in practice.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import sys

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding

from llama_index_janus import JanusPro

DOCUMENTS = [
    "Janus-Pro is a multimodal model by DeepSeek that both understands and generates images.",
    "ZeroGPU Spaces share GPUs between users; each user has a daily GPU-time quota.",
    "The lighthouse on the north cape was painted red and white in 1921.",
    "Gradio apps expose their functions through a queue with server-sent events.",
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


def main() -> None:
    question = sys.argv[1] if len(sys.argv) > 1 else "When was the lighthouse painted?"
    index = VectorStoreIndex.from_documents(
        [Document(text=text) for text in DOCUMENTS], embed_model=HashingEmbedding()
    )
    with JanusPro(base_url=os.environ.get("JANUS_BASE_URL")) as llm:
        engine = index.as_query_engine(llm=llm, similarity_top_k=1)
        response = engine.query(question)
    print("answer:", response)
    for node in response.source_nodes:
        print(f"source ({node.score:.2f}): {node.node.get_content()}")


if __name__ == "__main__":
    main()
