"""A tiny random-weight Janus checkpoint for tests: 2-layer 32-wide Llama, small vision and VQ.

Built with transformers' own classes and saved with ``save_pretrained``, so tests load it back
through the same ``from_pretrained`` path users hit. The tokenizer (made with ``tokenizers``)
carries Janus's special tokens and the chat template the converted Janus-Pro checkpoints ship.
Its answers are random tokens: tests check what is real (streaming, images reaching the model,
stops, events), never what the text says.

transformers 4.5x hard-codes 576 tokens per image in ``JanusProcessor``, so there the vision
tower sees 48 px images in 2 px patches (24x24 = 576); where the processor takes
``num_image_tokens`` (5.x) a 4x4 grid keeps image generation fast.
"""

from __future__ import annotations

import inspect
import itertools
import string
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

SPECIAL = {
    "unk": "<unk>",
    "bos": "<｜begin▁of▁sentence｜>",
    "eos": "<｜end▁of▁sentence｜>",
    "pad": "<｜▁pad▁｜>",
    "image": "<image_placeholder>",
    "boi": "<begin_of_image>",
    "eoi": "<end_of_image>",
}
# The template of deepseek-community/Janus-Pro-*: "<|User|>: …\n\n<|Assistant|>: …<eos>", an
# image item rendering as <image_placeholder>, other roles as "Role: …".
CHAT_TEMPLATE = (
    "{%set seps=['\n\n','<｜end▁of▁sentence｜>']%}"
    "{%for message in messages%}"
    "{%if message['role']|lower=='user'%}<|User|>: "
    "{%elif message['role']|lower=='assistant'%}<|Assistant|>: "
    "{%else%}{{message['role'].capitalize()}}: {%endif%}"
    "{%for content in message['content']%}"
    "{%if content['type']=='image'%}"
    "{%if not loop.first%}{{'\n'}}{%endif%}<image_placeholder>{%if not loop.last%}{{'\n'}}{%endif%}"
    "{%elif content['type']=='text'%}"
    "{%set text=content['text']%}"
    "{%if loop.first%}{%set text=text.lstrip()%}{%endif%}"
    "{%if loop.last%}{%set text=text.rstrip()%}{%endif%}"
    "{%if not loop.first and message['content'][loop.index0-1]['type']=='text'%}"
    "{{' '+text}}{%else%}{{text}}{%endif%}"
    "{%endif%}{%endfor%}"
    "{%if not loop.last or add_generation_prompt%}"
    "{%if message['role']|lower=='user'%}{{seps[0]}}{%else%}{{seps[1]}}{%endif%}"
    "{%endif%}{%endfor%}"
    "{%if add_generation_prompt%}<|Assistant|>:{%endif%}"
)


@dataclass(frozen=True)
class TinyJanus:
    """Where the checkpoint is and the numbers tests compare against."""

    path: Path
    num_image_tokens: int
    image_side: int
    """Side in pixels of the images the tiny model draws."""
    image_token_id: int
    eos_token_id: int
    vocab_size: int


def _vocabulary() -> tuple[dict[str, int], list[tuple[str, str]]]:
    vocab: dict[str, int] = {}
    for token in [*SPECIAL.values(), "<|User|>", "<|Assistant|>"]:
        vocab[token] = len(vocab)
    for char in string.ascii_letters + string.digits + string.punctuation + "\n▁":
        vocab.setdefault(char, len(vocab))
    merges = []
    # Pairs of lowercase letters and "▁" + letter: ~700 ordinary tokens, so a random model
    # rarely draws the end-of-sequence token and answers run long.
    for first, second in itertools.product("▁" + string.ascii_lowercase, string.ascii_lowercase):
        vocab[first + second] = len(vocab)
        merges.append((first, second))
    return vocab, merges


def build(path: Path, *, seed: int = 0) -> TinyJanus:
    """Save a tiny Janus model and its processor under ``path``."""
    vocab, merges = _vocabulary()
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=SPECIAL["unk"]))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="never", split=False)
    backend.decoder = decoders.Metaspace(prepend_scheme="never", split=False)
    backend.add_special_tokens([*SPECIAL.values(), "<|User|>", "<|Assistant|>"])
    path.mkdir(parents=True, exist_ok=True)
    backend.save(str(path / "tokenizer.json"))
    tokenizer = transformers.LlamaTokenizerFast(
        tokenizer_file=str(path / "tokenizer.json"),
        unk_token=SPECIAL["unk"],
        bos_token=SPECIAL["bos"],
        eos_token=SPECIAL["eos"],
        pad_token=SPECIAL["pad"],
        extra_special_tokens={
            "image_token": SPECIAL["image"],
            "boi_token": SPECIAL["boi"],
            "eoi_token": SPECIAL["eoi"],
        },
        model_max_length=4096,
    )
    settable = "num_image_tokens" in inspect.signature(transformers.JanusProcessor).parameters
    image_size, patch = (8, 2) if settable else (48, 2)
    num_image_tokens = (image_size // patch) ** 2
    try:  # 5.x ships a PIL backend next to the torchvision one
        from transformers.models.janus.image_processing_pil_janus import (
            JanusImageProcessorPil as ImageProcessor,
        )
    except ImportError:
        from transformers.models.janus.image_processing_janus import (
            JanusImageProcessor as ImageProcessor,
        )
    images = ImageProcessor(
        size={"height": image_size, "width": image_size},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        min_size=2,
    )
    processor = transformers.JanusProcessor(
        image_processor=images,
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        use_default_system_prompt=True,
        **({"num_image_tokens": num_image_tokens} if settable else {}),
    )
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in SPECIAL.items()}
    config = transformers.JanusConfig(
        text_config={
            "model_type": "llama",
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "bos_token_id": ids["bos"],
            "eos_token_id": ids["eos"],
            "pad_token_id": ids["pad"],
        },
        vision_config={
            "image_size": image_size,
            "patch_size": patch,
            "num_image_tokens": num_image_tokens,
            "hidden_size": 32,
            "projection_dim": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "mlp_ratio": 2,
            "depth": 1,
        },
        vq_config={
            "embed_dim": 8,
            "num_embeddings": 64,
            "latent_channels": 8,
            "base_channels": 32,  # GroupNorm of 32 groups: no fewer channels
            "channel_multiplier": [1, 1],
            "num_res_blocks": 1,
            "projection_dim": 32,  # the generation aligner feeds the 32-wide text model
            "image_token_embed_dim": 32,
            "num_hidden_layers": 1,
        },
        image_token_id=ids["image"],
    )
    torch.manual_seed(seed)
    model = transformers.JanusForConditionalGeneration(config).eval()
    # What the converted Janus-Pro checkpoints set; generation_kwargs is lost on reload.
    model.generation_config.boi_token_id = ids["boi"]
    model.generation_config.generation_kwargs = {"boi_token_id": ids["boi"]}
    model.save_pretrained(str(path))
    processor.save_pretrained(str(path))
    return TinyJanus(
        path=path,
        num_image_tokens=num_image_tokens,
        image_side=(image_size // patch) * 2,  # one upsampling per extra channel_multiplier
        image_token_id=ids["image"],
        eos_token_id=ids["eos"],
        vocab_size=len(vocab),
    )
