"""langchain-tests' standard unit suite for ChatJanus (no network: nothing here connects)."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_tests.unit_tests import ChatModelUnitTests
from lc_support import JanusCapabilities

from langchain_janus import ChatJanus


class TestChatJanusStandardUnit(JanusCapabilities, ChatModelUnitTests):
    """Flags say what Janus can do: image inputs yes; tools, structured output, usage no."""

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatJanus

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "janus-pro-7b", "base_url": "http://127.0.0.1:9"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return {"HF_TOKEN": "hf_from_the_environment"}, {}, {"api_key": "hf_from_the_environment"}
