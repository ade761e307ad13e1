"""Loading Janus-Pro through transformers: the import check, device and dtype, weights, fixes.

``import_stack`` imports torch and transformers (only the local backend ever does) and refuses
versions without a working Janus. ``choose_placement`` picks the device and dtype (CUDA →
bfloat16, Apple ``mps`` → float16, CPU → float32 with a warning). ``load`` reads the
processor and the weights from a folder or the Hugging Face cache, maps what can go wrong to
typed errors, and repairs what a reloaded checkpoint loses (the ``boi_token_id`` image
generation needs, the number of image tokens).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from importlib.util import find_spec
from types import ModuleType
from typing import Any

from ..errors import InvalidInputError
from .errors import (
    LocalSetupError,
    ModelNotDownloadedError,
    ModelNotFoundError,
    OutOfMemoryError,
    SlowDeviceWarning,
    UnsupportedTransformersError,
)

__all__ = [
    "MIN_TRANSFORMERS",
    "LoadedModel",
    "Placement",
    "choose_placement",
    "import_stack",
    "load",
    "out_of_memory",
    "warn_if_slow",
]

MIN_TRANSFORMERS = (4, 52)
"""The first transformers release with ``JanusForConditionalGeneration``."""
INSTALL_HINT = "pip install 'janus-space[local]'"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_DTYPES = {
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
}
OOM_ADVICE = (
    "try deepseek-community/Janus-Pro-1B, fewer images per call or per generation "
    "(num_images), a shorter answer (max_new_tokens), dtype='float16' or 'bfloat16', "
    "device_map='auto' to spread the model over several GPUs, or free the memory other "
    "processes hold"
)


def import_stack() -> tuple[ModuleType, ModuleType]:
    """torch and transformers, imported now; a clear error when either is missing or too old."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise LocalSetupError(
            f"the local backend needs torch and transformers ({exc}); install them with "
            f"{INSTALL_HINT} (on a CUDA machine, install the torch build for your CUDA first)"
        ) from exc
    from packaging.version import Version

    installed = transformers_version(transformers)
    minimum = ".".join(map(str, MIN_TRANSFORMERS))
    if Version(installed) < Version(minimum) or not hasattr(
        transformers, "JanusForConditionalGeneration"
    ):
        raise UnsupportedTransformersError(
            f"transformers {installed} has no Janus-Pro implementation; the local backend needs "
            f"transformers >= {minimum}: {INSTALL_HINT} --upgrade",
            installed=installed,
        )
    return torch, transformers


def transformers_version(transformers: ModuleType) -> str:
    """The installed transformers release (its own ``__version__``)."""
    return str(transformers.__version__)


@dataclass(frozen=True)
class Placement:
    """Where the weights go: one device and dtype, or a ``device_map`` spread by accelerate."""

    device: Any
    dtype: Any
    device_map: str | dict[str, Any] | None = None


def _dtype(torch: ModuleType, dtype: Any) -> Any:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype.lower() in _DTYPES:
        return getattr(torch, _DTYPES[dtype.lower()])
    if isinstance(dtype, str) and dtype.lower() == "auto":
        return None
    raise InvalidInputError(
        f"dtype must be a torch.dtype or one of {sorted(set(_DTYPES.values()))}, not {dtype!r}"
    )


def choose_placement(
    torch: ModuleType, device: Any = None, dtype: Any = None, device_map: Any = None
) -> Placement:
    """The device and dtype to load on: the user's choice, else the best this machine has."""
    chosen_dtype = _dtype(torch, dtype)
    if device_map is not None:
        if device is not None:
            raise InvalidInputError("give device or device_map, not both")
        if not isinstance(device_map, (str, dict)):
            raise InvalidInputError(f"device_map must be 'auto' or a dict, not {device_map!r}")
        if find_spec("accelerate") is None:
            raise LocalSetupError(
                f"device_map={device_map!r} needs accelerate: pip install accelerate"
            )
        has_cuda = torch.cuda.is_available()
        if chosen_dtype is None:
            chosen_dtype = _accelerator_dtype(torch) if has_cuda else torch.float32
        return Placement(device=None, dtype=chosen_dtype, device_map=device_map)
    try:
        target = torch.device(device) if device is not None else _best_device(torch)
    except (RuntimeError, TypeError) as exc:
        raise InvalidInputError(f"device {device!r} is not a torch device: {exc}") from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r}: this torch build sees no CUDA GPU")
    if chosen_dtype is None:
        if target.type == "cuda":
            chosen_dtype = _accelerator_dtype(torch)
        elif target.type == "mps":
            chosen_dtype = torch.float16
        else:
            chosen_dtype = torch.float32
    return Placement(device=target, dtype=chosen_dtype)


def warn_if_slow(placement: Placement) -> None:
    """Say that the CPU is slow when the model was placed there (once it loaded)."""
    if placement.device is not None and placement.device.type == "cpu":
        warnings.warn(
            "Janus-Pro runs on the CPU here: expect minutes per answer with the 7B model "
            "(install a CUDA build of torch, or use an Apple GPU, for interactive speed)",
            SlowDeviceWarning,
            stacklevel=3,
        )


def _best_device(torch: ModuleType) -> Any:
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _accelerator_dtype(torch: ModuleType) -> Any:
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@dataclass
class LoadedModel:
    """A loaded model and processor, with the numbers generation needs."""

    name: str
    model: Any
    processor: Any
    device: Any
    dtype: Any
    context_tokens: int
    num_image_tokens: int
    image_token_id: int
    image_side: int
    """The side in pixels of the images the model draws (Janus-Pro: 384)."""


def out_of_memory(exc: BaseException, torch: ModuleType) -> OutOfMemoryError | None:
    """The typed error for an accelerator running out of memory, or None for other errors."""
    text = str(exc)
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, oom) or (isinstance(exc, RuntimeError) and "out of memory" in text.lower()):
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        return OutOfMemoryError(f"out of GPU memory ({first[:200]}); {OOM_ADVICE}")
    return None


def _not_available(model: str, download: bool, exc: BaseException) -> ModelNotFoundError:
    if os.path.isdir(model):
        return ModelNotFoundError(
            f"{model!r} is a folder but holds no transformers checkpoint (config.json): {exc}",
            model=model,
        )
    if not _REPO_ID.match(model):
        return ModelNotFoundError(
            f"no model folder at {model!r}, and it is no Hugging Face model id ('owner/name')",
            model=model,
        )
    if not download:
        return ModelNotDownloadedError(
            f"{model} is not in the Hugging Face cache: download it with `hf download {model}` "
            "(about 15 GB for Janus-Pro-7B, 4 GB for -1B), or pass download=True to let "
            "LocalJanus fetch it",
            model=model,
        )
    return ModelNotFoundError(
        f"{model} could not be downloaded ({exc}); check the id (the transformers checkpoints "
        "are deepseek-community/Janus-Pro-7B and -1B) and your network or HF_TOKEN",
        model=model,
    )


def _read_config(transformers: ModuleType, model: str, hub: dict[str, Any]) -> dict[str, Any]:
    from transformers.utils.hub import cached_file

    try:
        path = cached_file(model, "config.json", **hub)
    except (OSError, ValueError) as exc:
        raise _not_available(model, not hub["local_files_only"], exc) from None
    if path is None:
        raise _not_available(model, not hub["local_files_only"], OSError("no config.json"))
    with open(path, encoding="utf-8") as file:
        config: dict[str, Any] = json.load(file)
    kind = config.get("model_type")
    if kind == "multi_modality":
        raise ModelNotFoundError(
            f"{model} is DeepSeek's original Janus format, which transformers cannot load; use "
            "the converted checkpoint deepseek-community/Janus-Pro-7B (or -1B)",
            model=model,
        )
    if kind != "janus":
        raise ModelNotFoundError(
            f"{model} is a {kind!r} checkpoint, not Janus (model_type 'janus'); use "
            "deepseek-community/Janus-Pro-7B or -1B",
            model=model,
        )
    return config


def load(
    model: str,
    placement: Placement,
    *,
    download: bool = False,
    revision: str | None = None,
    cache_dir: str | None = None,
    context_tokens: int | None = None,
) -> LoadedModel:
    """Load processor and weights (see the module docstring); blocking, so call it off-loop."""
    torch, transformers = import_stack()
    hub: dict[str, Any] = {
        "local_files_only": not download,
        "revision": revision,
        "cache_dir": cache_dir,
    }
    _read_config(transformers, model, hub)
    major = int(transformers_version(transformers).split(".")[0])
    dtype_key = "dtype" if major >= 5 else "torch_dtype"
    kwargs: dict[str, Any] = {**hub, dtype_key: placement.dtype}
    if placement.device_map is not None:
        kwargs["device_map"] = placement.device_map
    elif find_spec("accelerate") is not None:
        kwargs["device_map"] = str(placement.device)  # straight onto the device, no CPU copy
    try:
        processor = transformers.AutoProcessor.from_pretrained(model, **hub)
        network = transformers.JanusForConditionalGeneration.from_pretrained(model, **kwargs)
        if "device_map" not in kwargs:
            network = network.to(placement.device)
    except OSError as exc:
        raise _not_available(model, download, exc) from None
    except (RuntimeError, MemoryError) as exc:
        memory = out_of_memory(exc, torch)
        if memory is None:
            raise
        raise memory from exc
    network.eval()
    return _prepare(model, network, processor, placement, context_tokens)


def _prepare(
    name: str, network: Any, processor: Any, placement: Placement, context_tokens: int | None
) -> LoadedModel:
    """Check the checkpoint is consistent and restore what ``from_pretrained`` drops."""
    config = network.config
    tokenizer = processor.tokenizer
    boi = tokenizer.convert_tokens_to_ids(processor.image_start_token)
    image_token = tokenizer.convert_tokens_to_ids(processor.image_token)
    generation = network.generation_config
    # transformers drops generation_kwargs when a saved generation config is read back, and
    # generate(generation_mode="image") reads boi_token_id from there.
    extra = dict(getattr(generation, "generation_kwargs", None) or {})
    extra.setdefault("boi_token_id", boi)
    generation.generation_kwargs = extra
    num_image_tokens = int(processor.num_image_tokens)
    grid = int(config.vq_config.num_patches)
    if grid * grid != num_image_tokens:
        raise ModelNotFoundError(
            f"{name}: the processor expands an image to {num_image_tokens} tokens but the "
            f"image decoder draws a {grid}x{grid} grid; the checkpoint is inconsistent",
            model=name,
        )
    config.vision_config.num_image_tokens = num_image_tokens  # generate's loop length
    levels = len(config.vq_config.channel_multiplier)
    window = int(context_tokens or config.text_config.max_position_embeddings)
    device = placement.device if placement.device is not None else network.device
    return LoadedModel(
        name=name,
        model=network,
        processor=processor,
        device=device,
        dtype=placement.dtype,
        context_tokens=window,
        num_image_tokens=num_image_tokens,
        image_token_id=int(image_token),
        image_side=grid * 2 ** (levels - 1),
    )
