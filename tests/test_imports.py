"""Importing a package loads only what it needs: no other framework, no Pillow, no gradio.

Why: ``import langchain_janus`` in a LangChain app must not pay for LlamaIndex (and vice
versa), and Pillow (image resizing) and gradio (the replica) are only needed when an image is
actually resized or a replica is served. Each check runs in a fresh interpreter, since this
test process has long since imported everything.

A framework may load heavy packages itself (``llama_index.core`` imports Pillow and numpy at
import time), which no adapter can avoid. So "the adapter loads no Pillow" is checked against
a baseline: a second interpreter imports exactly the framework modules the adapter ended up
loading, without the adapter; the adapter may add nothing forbidden on top of that.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("langchain_core", "langchain", "llama_index")
ALWAYS_FORBIDDEN = {"gradio", "gradio_client"}
UNTIL_NEEDED = {"PIL", "numpy"}
needs_langchain = pytest.mark.skipif(
    importlib.util.find_spec("langchain_core") is None, reason="langchain-core not installed"
)
needs_llama_index = pytest.mark.skipif(
    importlib.util.find_spec("llama_index") is None, reason="llama-index-core not installed"
)


def _run(code: str) -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def loaded_by(statements: str) -> dict[str, list[str]]:
    """Run ``statements`` in a fresh interpreter; list top-level packages and framework modules."""
    code = f"""
import json, sys
{statements}
names = sorted(sys.modules)
print(json.dumps({{
    "top": sorted({{n.split(".")[0] for n in names}}),
    "framework": [n for n in names if n.split(".")[0] in {FRAMEWORKS!r}],
}}))
"""
    return _run(code)


def added_by_adapter(statements: str) -> set[str]:
    """Top-level packages loaded by ``statements`` beyond the framework modules it pulled in."""
    with_adapter = loaded_by(statements)
    framework_only = loaded_by("\n".join(f"import {m}" for m in with_adapter["framework"]))
    return set(with_adapter["top"]) - set(framework_only["top"])


def test_core_loads_no_framework_pillow_numpy_or_gradio() -> None:
    top = set(loaded_by("import janus_space")["top"])
    assert not top & (ALWAYS_FORBIDDEN | UNTIL_NEEDED | set(FRAMEWORKS))


@needs_langchain
def test_langchain_adapter_loads_no_llama_index() -> None:
    top = set(loaded_by("import langchain_janus")["top"])
    assert "llama_index" not in top
    assert not top & ALWAYS_FORBIDDEN


@needs_llama_index
def test_llama_index_adapter_loads_no_langchain() -> None:
    top = set(loaded_by("import llama_index_janus")["top"])
    assert not top & {"langchain_core", "langchain"}
    assert not top & ALWAYS_FORBIDDEN


@pytest.mark.parametrize(
    "statements",
    [
        pytest.param("import langchain_janus", marks=needs_langchain),
        pytest.param("import llama_index_janus", marks=needs_llama_index),
        # Creating the objects is not "needed" either: nothing is resized until a call.
        pytest.param(
            "from langchain_janus import ChatJanus\nChatJanus(base_url='http://127.0.0.1:9')",
            marks=needs_langchain,
        ),
        pytest.param(
            "from llama_index_janus import JanusPro\nJanusPro(base_url='http://127.0.0.1:9')",
            marks=needs_llama_index,
        ),
    ],
    ids=["import-langchain_janus", "import-llama_index_janus", "ChatJanus()", "JanusPro()"],
)
def test_adapters_add_no_pillow_numpy_or_gradio(statements: str) -> None:
    assert not added_by_adapter(statements) & (UNTIL_NEEDED | ALWAYS_FORBIDDEN)


@needs_langchain
def test_the_baseline_would_catch_an_adapter_importing_pillow() -> None:
    """The baseline comparison is not vacuous: an extra ``import PIL`` shows up."""
    assert "PIL" in added_by_adapter("import langchain_janus\nimport PIL")


@pytest.mark.parametrize(
    ("package", "blocked", "extra"),
    [
        ("langchain_janus", "langchain_core", "langchain"),
        ("llama_index_janus", "llama_index", "llama-index"),
    ],
)
def test_an_adapter_without_its_extra_names_the_extra_to_install(
    package: str, blocked: str, extra: str
) -> None:
    script = (
        "import sys\n"
        f"sys.modules[{blocked!r}] = None  # as if the extra were not installed\n"
        f"import {package}\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode != 0
    assert f"pip install 'janus-space[{extra}]'" in done.stderr
    assert "ModuleNotFoundError" not in done.stderr.splitlines()[-1]
