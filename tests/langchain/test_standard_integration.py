"""langchain-tests' standard integration suite for ChatJanus, against the replica or its cassettes.

Each test runs in the ``[replay]`` tier (cassettes under ``cassettes/langchain/``, no network)
and the ``[live]`` tier (the local replica). Flags are set to what Janus can do: image inputs
(inline and URL) yes; tool calling, structured output, JSON mode, usage metadata, PDF and audio
no. ``model_override_value`` switches a call to image generation, which the suite then checks
returns an AIMessage naming that model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from lc_support import JanusCapabilities

from langchain_janus import ChatJanus


class TestChatJanusStandardIntegration(JanusCapabilities, ChatModelIntegrationTests):
    base_url: str = ""

    @pytest.fixture
    async def model(
        self, request: pytest.FixtureRequest, standard_space_url: str
    ) -> AsyncIterator[BaseChatModel]:
        """The suite's model fixture, pointed at this tier's Space and closed afterwards."""
        self.base_url = standard_space_url
        extra = getattr(request, "param", None) or {}
        llm = self.chat_model_class(
            **{**self.standard_chat_model_params, **self.chat_model_params, **extra}
        )
        yield llm
        await llm.aclose()

    @property
    def chat_model_class(self) -> type[ChatJanus]:
        return ChatJanus

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "janus-pro-7b", "base_url": self.base_url}
