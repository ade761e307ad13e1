"""Loading: typed errors that say what to do, the device and dtype choice, the reload trap."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")  # the local extra (in CI a missing one fails: see conftest)
pytest.importorskip("transformers")
import torch
from conftest import ModelSpy, load
from tiny_janus import TinyJanus

from janus_space import InvalidInputError, JanusError
from janus_space.local import (
    LocalJanus,
    LocalSetupError,
    ModelNotDownloadedError,
    ModelNotFoundError,
    OutOfMemoryError,
    SlowDeviceWarning,
    UnsupportedTransformersError,
)


def test_a_model_missing_from_the_cache_says_how_to_download_it(tmp_path: Path) -> None:
    with pytest.raises(ModelNotDownloadedError) as caught:
        LocalJanus("deepseek-community/Janus-Pro-7B", device="cpu", cache_dir=tmp_path)
    message = str(caught.value)
    assert "hf download deepseek-community/Janus-Pro-7B" in message
    assert "download=True" in message
    assert caught.value.model == "deepseek-community/Janus-Pro-7B"
    assert isinstance(caught.value, JanusError)


@pytest.mark.parametrize("model", ["./no/such/folder", "/nowhere/at/all", "not a model id"])
def test_a_path_that_does_not_exist_is_not_found(model: str) -> None:
    with pytest.raises(ModelNotFoundError, match="no model folder") as caught:
        LocalJanus(model, device="cpu")
    assert not isinstance(caught.value, ModelNotDownloadedError)


def test_a_folder_without_a_checkpoint_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="holds no transformers checkpoint"):
        LocalJanus(str(tmp_path), device="cpu")


@pytest.mark.parametrize(
    ("model_type", "advice"),
    [("llama", "not Janus"), ("multi_modality", "DeepSeek's original Janus format")],
)
def test_a_checkpoint_of_another_kind_is_refused_with_the_right_id(
    tmp_path: Path, model_type: str, advice: str
) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    with pytest.raises(ModelNotFoundError, match=advice) as caught:
        LocalJanus(str(tmp_path), device="cpu")
    assert "deepseek-community/Janus-Pro-7B" in str(caught.value)


def test_a_transformers_without_janus_is_refused(
    tiny: TinyJanus, monkeypatch: pytest.MonkeyPatch
) -> None:
    from janus_space.local import loading

    monkeypatch.setattr(loading, "transformers_version", lambda module: "4.51.3")
    with pytest.raises(UnsupportedTransformersError, match=r"transformers >= 4\.52") as caught:
        LocalJanus(str(tiny.path), device="cpu")
    assert caught.value.installed == "4.51.3"
    assert "pip install 'janus-space[local]'" in str(caught.value)


def test_missing_torch_says_which_extra_to_install(
    tiny: TinyJanus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(LocalSetupError, match=r"janus-space\[local\]") as caught:
        LocalJanus(str(tiny.path))
    assert isinstance(caught.value, ImportError)


def test_importing_the_packages_does_not_import_torch() -> None:
    code = (
        "import sys, janus_space, janus_space.local\n"
        "from janus_space.local import LocalJanus\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
        RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB)"),
    ],
)
async def test_running_out_of_gpu_memory_says_what_to_try(
    backend: LocalJanus, spy: ModelSpy, error: Exception
) -> None:
    # the accelerator's failure, raised where the real one would be: inside the forward pass
    def fail(module: Any, args: Any) -> None:
        raise error

    handle = backend.transformers_model.model.language_model.register_forward_pre_hook(fail)
    try:
        with pytest.raises(OutOfMemoryError, match="Janus-Pro-1B") as caught:
            await backend.understand("Hi.", max_new_tokens=3)
        assert "max_new_tokens" in str(caught.value) and "device_map='auto'" in str(caught.value)
        assert isinstance(caught.value.__cause__, type(error))
        with pytest.raises(OutOfMemoryError, match="num_images"):
            await backend.generate("a cat", num_images=2)
    finally:
        handle.remove()
    # the backend keeps working once memory is there again
    assert (await backend.understand("Hi.", max_new_tokens=2)).endpoint


async def test_other_model_errors_pass_through_unchanged(backend: LocalJanus) -> None:
    def fail(module: Any, args: Any) -> None:
        raise RuntimeError("shape mismatch in a layer")

    handle = backend.transformers_model.model.language_model.register_forward_pre_hook(fail)
    try:
        with pytest.raises(RuntimeError, match="shape mismatch"):
            await backend.understand("Hi.", max_new_tokens=3)
    finally:
        handle.remove()


def test_the_cpu_is_chosen_without_a_gpu_and_says_it_is_slow(tiny: TinyJanus) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: the default device is not the CPU")
    with pytest.warns(SlowDeviceWarning, match="minutes per answer"):
        janus = LocalJanus(str(tiny.path))
    try:
        assert janus.device.type == "cpu" and janus.dtype == torch.float32
        assert next(janus.transformers_model.parameters()).dtype == torch.float32
    finally:
        janus.close()


@pytest.mark.parametrize(("name", "dtype"), [("bfloat16", torch.bfloat16), ("fp16", torch.float16)])
async def test_a_dtype_by_name_loads_the_weights_in_it(
    tiny: TinyJanus, name: str, dtype: torch.dtype
) -> None:
    janus = load(tiny, dtype=name)
    try:
        assert janus.dtype == dtype and next(janus.transformers_model.parameters()).dtype == dtype
        answer = await janus.understand("Half?", max_new_tokens=3)
        assert answer.endpoint == f"local:{tiny.path}"
    finally:
        await janus.aclose()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"dtype": "int8"}, "dtype must be"),
        ({"device": "nonsense"}, "not a torch device"),
        ({"device": "cpu", "device_map": "auto"}, "device or device_map"),
        ({"device_map": 3}, "device_map must be"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"context_tokens": -5}, "max_new_tokens"),
    ],
)
def test_bad_settings_are_refused_before_loading(
    tiny: TinyJanus, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        LocalJanus(str(tiny.path), **settings)


def test_cuda_on_a_machine_without_it_is_refused(tiny: TinyJanus) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(InvalidInputError, match="sees no CUDA GPU"):
        LocalJanus(str(tiny.path), device="cuda")


def test_device_map_needs_accelerate(tiny: TinyJanus) -> None:
    if find_spec("accelerate") is not None:
        janus = LocalJanus(str(tiny.path), device_map="auto")
        try:
            assert janus.transformers_model is not None
        finally:
            janus.close()
        return
    with pytest.raises(LocalSetupError, match="pip install accelerate"):
        LocalJanus(str(tiny.path), device_map="auto")


async def test_a_checkpoint_without_the_image_generation_settings_still_draws(
    tiny: TinyJanus, tmp_path: Path
) -> None:
    # transformers 5.x drops generation_kwargs (boi_token_id) when it reads a saved generation
    # config back; here they are not on disk at all, and the backend restores them from the
    # processor, so generate(generation_mode="image") works.
    copy = tmp_path / "copy"
    shutil.copytree(tiny.path, copy)
    saved = json.loads((copy / "generation_config.json").read_text())
    stripped = {k: v for k, v in saved.items() if k not in ("generation_kwargs", "boi_token_id")}
    (copy / "generation_config.json").write_text(json.dumps(stripped))
    janus = load(copy)
    try:
        boi = janus.processor.tokenizer.convert_tokens_to_ids(janus.processor.image_start_token)
        assert janus.transformers_model.generation_config.generation_kwargs == {"boi_token_id": boi}
        assert (
            janus.transformers_model.config.vision_config.num_image_tokens == tiny.num_image_tokens
        )
        result = await janus.generate("a hill", num_images=2)
        assert len(result.images) == 2
    finally:
        await janus.aclose()
