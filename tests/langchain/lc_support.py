"""Shared pieces of the LangChain adapter's tests: the sample picture and status checks."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

SAMPLE_PNG = (Path(__file__).parent / "data" / "sample.png").read_bytes()
"""A 160x120 PNG served for the sample picture URL (see conftest)."""
SAMPLE_B64 = base64.b64encode(SAMPLE_PNG).decode()
SAMPLE_HOST = "https://raw.githubusercontent.com"
SAMPLE_URL_PREFIX = f"{SAMPLE_HOST}/langchain-ai/docs/"
SAMPLE_URL = (
    f"{SAMPLE_URL_PREFIX}4d11d08b6b0e210bd456943f7a22febbd168b543/src/images/agentic-rag-output.png"
)
"""The picture langchain-tests' ``test_image_inputs`` downloads."""

SLOW_STEPS = ["queued", "started", "log", "progress", "log"]
"""What a ``[slow:N]`` job reports, with the run of progress steps counted once."""


def check_slow_steps(statuses: Sequence[str], tier: str) -> None:
    """Assert the statuses of a ``[slow:N]`` job.

    Gradio samples a function's progress while it runs, so how many steps are reported
    depends on timing: the recorded tiers hold at least one (checked when recording), while
    on a loaded machine the live replica may report none.
    """
    collapsed = [
        s for i, s in enumerate(statuses) if s != "progress" or i == 0 or statuses[i - 1] != s
    ]
    if tier == "live":
        assert collapsed in (SLOW_STEPS, [s for s in SLOW_STEPS if s != "progress"])
    else:
        assert collapsed == SLOW_STEPS


class JanusCapabilities:
    """What Janus can do, as langchain-tests' flags: shared by the unit and integration suites.

    Image inputs (inline and URL) yes; tool calling, structured output and usage metadata no.
    ``model_override_value`` switches a call to image generation.
    """

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        # ChatJanus.with_structured_output exists but is prompted and validated (see
        # test_lc_structured.py): the standard suites would fail, not pass honestly. The unit
        # test asks for method="function_calling", which Janus declines (no function calling);
        # the integration tests need a model that follows the schema, and the replica's
        # stand-in answers with its report (JSON answers have to be scripted).
        return False

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return False

    @property
    def model_override_value(self) -> str:
        return "janus-pro-7b-image"
