"""ChatJanus without a Space: settings, secrets, and bad input refused before any request."""

from __future__ import annotations

import base64
import copy
import pickle
from typing import Any

import pytest
import pytest_socket
from langchain_core.load import dumpd, dumps
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from lc_support import SAMPLE_B64
from pydantic import SecretStr, ValidationError

from janus_space import InvalidInputError, JanusWarning
from langchain_janus import ChatJanus, JanusImageGenerator

NOWHERE = "http://127.0.0.1:9"  # nothing listens: a request would be a connection error
TOKEN = "hf_NeverShowThisTokenAnywhere1234"
HEADER_SECRET = "ip-token-never-shown-5678"
B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()


@pytest.fixture
def no_network() -> Any:
    """Block every socket: an attempted request fails loudly instead of reaching anything."""
    pytest_socket.disable_socket(allow_unix_socket=True)
    yield
    pytest_socket.enable_socket()


# --- settings ----------------------------------------------------------------------------------


def test_creating_a_model_connects_nothing(no_network: None) -> None:
    llm = ChatJanus(base_url=NOWHERE)
    assert llm._handle.built is None
    assert llm.model == "janus-pro-7b"


def test_api_key_comes_from_hf_token_or_either_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert ChatJanus().api_key is not None
    assert ChatJanus().api_key.get_secret_value() == TOKEN  # type: ignore[union-attr]
    assert ChatJanus(hf_token="hf_other").api_key.get_secret_value() == "hf_other"  # type: ignore[union-attr]
    monkeypatch.delenv("HF_TOKEN")
    assert ChatJanus().api_key is None


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"temperature": 1.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 2}, "top_p"),
        ({"seed": -1}, "seed"),
        ({"guidance": 0.5}, "guidance"),
        ({"model": "gpt-4o"}, "model"),
        ({"temprature": 0.5}, "temprature"),
    ],
)
def test_bad_settings_fail_at_construction(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        ChatJanus(**settings)


def test_max_tokens_is_accepted_but_warns_that_it_is_ignored() -> None:
    with pytest.warns(JanusWarning, match="ignores max_tokens"):
        llm = ChatJanus(max_tokens=100)
    assert llm._get_ls_params()["ls_max_tokens"] == 100


def test_tracing_params_name_the_model_and_honour_overrides() -> None:
    llm = ChatJanus(temperature=0.3, stop=["\n"])
    params = llm._get_ls_params()
    assert params == {
        "ls_provider": "janus",
        "ls_model_name": "janus-pro-7b",
        "ls_model_type": "chat",
        "ls_temperature": 0.3,
        "ls_stop": ["\n"],
    }
    assert llm._get_ls_params(model="janus-pro-7b-image")["ls_model_name"] == "janus-pro-7b-image"


# --- secrets -----------------------------------------------------------------------------------


def test_secrets_never_appear_in_repr_dumps_or_traced_params() -> None:
    llm = ChatJanus(api_key=TOKEN, default_headers={"x-ip-token": HEADER_SECRET}, base_url=NOWHERE)
    tool = JanusImageGenerator(api_key=TOKEN, default_headers={"x-ip-token": HEADER_SECRET})
    views = [
        repr(llm),
        str(llm),
        dumps(llm),
        str(dumpd(llm)),
        llm.model_dump_json(),
        str(llm._get_invocation_params()),
        str(llm._get_ls_params()),
        str(llm._identifying_params),
        repr(tool),
        dumps(tool),
        str(tool.model_dump()),
        str(llm.model_dump()),
    ]
    for view in views:
        assert TOKEN not in view
        assert HEADER_SECRET not in view
    assert "**********" in repr(llm)
    assert llm.lc_secrets == {"api_key": "HF_TOKEN"}


# --- bad input: a clear error, and no request --------------------------------------------------

BAD_MESSAGES = {
    "audio block": (
        [
            HumanMessage(
                [
                    {"type": "text", "text": "hi"},
                    {"type": "audio", "base64": B64, "mime_type": "audio/wav"},
                ]
            )
        ],
        r"'audio' block",
    ),
    "file block": (
        [HumanMessage([{"type": "file", "base64": B64, "mime_type": "application/pdf"}])],
        r"'file' block",
    ),
    "empty conversation": ([], "no messages"),
    "only a system message": ([SystemMessage("be nice")], "only system messages"),
    "ends with the assistant": (
        [HumanMessage("hi"), AIMessage("hello")],
        "must come from the user",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_MESSAGES))
async def test_bad_messages_fail_before_any_request(case: str, no_network: None) -> None:
    messages, pattern = BAD_MESSAGES[case]
    llm = ChatJanus(base_url=NOWHERE)
    with pytest.raises(InvalidInputError, match=pattern):
        await llm.ainvoke(messages)
    with pytest.raises(InvalidInputError, match=pattern):
        llm.invoke(messages)
    with pytest.raises(InvalidInputError, match=pattern):
        [chunk async for chunk in llm.astream(messages)]
    await llm.aclose()


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"temperature": 1.5}, "temperature must be between 0 and 1"),
        ({"top_p": -1}, "top_p must be between 0 and 1"),
        ({"seed": "seven"}, "seed must be an integer"),
        ({"guidance": 3}, "guidance applies only to model='janus-pro-7b-image'"),
        ({"model": "gpt-4o"}, "model must be one of"),
        ({"tools": [{"name": "x"}]}, r"does not support \['tools'\]"),
    ],
)
async def test_bad_call_arguments_fail_before_any_request(
    kwargs: dict[str, Any], pattern: str, no_network: None
) -> None:
    async with ChatJanus(base_url=NOWHERE) as llm:
        with pytest.raises(InvalidInputError, match=pattern):
            await llm.ainvoke("hi", **kwargs)
        with pytest.raises(InvalidInputError, match=pattern):
            llm.invoke("hi", **kwargs)


async def test_generation_refuses_images_and_understanding_only_arguments(no_network: None) -> None:
    image = {"type": "image", "base64": B64, "mime_type": "image/png"}
    async with ChatJanus(base_url=NOWHERE, model="janus-pro-7b-image") as llm:
        with pytest.raises(InvalidInputError, match="text prompt only"):
            await llm.ainvoke([HumanMessage([{"type": "text", "text": "redraw"}, image])])
        with pytest.raises(InvalidInputError, match="top_p applies only to model='janus-pro-7b'"):
            await llm.ainvoke("a fox", top_p=0.5)


async def test_text_only_error_refuses_questions_without_an_image(no_network: None) -> None:
    async with ChatJanus(base_url=NOWHERE, text_only="error") as llm:
        with pytest.raises(InvalidInputError, match="needs an image"):
            await llm.ainvoke("what is 2+2?")


async def test_extra_images_error_refuses_two_images(no_network: None) -> None:
    image = {"type": "image", "base64": SAMPLE_B64, "mime_type": "image/png"}
    two = [
        HumanMessage([{"type": "text", "text": "first"}, image]),
        HumanMessage([{"type": "text", "text": "and this one?"}, image]),
    ]
    async with ChatJanus(base_url=NOWHERE, extra_images="error") as llm:
        with pytest.raises(InvalidInputError, match="takes exactly one"):
            await llm.ainvoke(two)


def test_per_call_max_tokens_warns_too(no_network: None) -> None:
    llm = ChatJanus(base_url=NOWHERE)
    with (
        pytest.warns(JanusWarning, match="cannot be honoured"),
        pytest.raises(InvalidInputError),
    ):
        llm.invoke([SystemMessage("only a system message")], max_tokens=5)


def test_copies_get_their_own_backends() -> None:
    llm = ChatJanus(base_url=NOWHERE, api_key=TOKEN, temperature=0.2)
    backend = llm.janus_backend  # made on first use
    for copied in (
        copy.deepcopy(llm),
        pickle.loads(pickle.dumps(llm)),
        llm.model_copy(deep=True),
        llm.model_copy(),
    ):
        assert copied._handle.built is None
        assert copied.janus_backend is not backend
        assert (copied.temperature, copied.base_url) == (0.2, NOWHERE)
        assert copied.api_key is not None and copied.api_key.get_secret_value() == TOKEN
        copied.close()
    assert llm.janus_backend is backend
    llm.close()


@pytest.mark.parametrize(
    ("update", "read"),
    [
        ({"base_url": "http://127.0.0.1:10"}, lambda b: b.base_url),
        ({"text_only": "error"}, lambda b: b.options.text_only),
        ({"timeout": 7.0}, lambda b: b.options.timeouts.call),
        ({"api_key": SecretStr("hf_" + "b" * 30)}, lambda b: b.options.hf_token.get()),
        ({"max_retries": 0}, lambda b: b.options.max_retries),
    ],
)
def test_model_copy_with_changed_settings_is_honoured_after_a_call(
    update: dict[str, Any], read: Any
) -> None:
    llm = ChatJanus(base_url=NOWHERE, api_key=TOKEN)
    original = llm.janus_backend  # as if a call had been made
    copied = llm.model_copy(update=update)
    expected = next(iter(update.values()))
    expected = expected.get_secret_value() if isinstance(expected, SecretStr) else expected
    assert read(copied.janus_backend) == expected
    assert llm.janus_backend is original  # the original keeps its own settings
    llm.janus_backend.options  # noqa: B018 - still usable
    copied.close()
    llm.close()
