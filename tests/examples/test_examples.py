"""Every example in ``examples/`` runs as a user runs it (``python examples/X.py`` in a
subprocess, ``JANUS_BASE_URL`` pointing at the session's replica) and prints what it should.

The replica's answers report what it received (image size, the flattened question), so these
checks prove that each example sent the right image and text, not only that it exited 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from janus_space.replica import parse_understanding_report, prompt_checksum, read_generation_report

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, replica_url: str, tmp_path: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "JANUS_BASE_URL")}
    env.update(JANUS_BASE_URL=replica_url, TMPDIR=str(tmp_path), PYTHONWARNINGS="default")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    for trouble in ("Warning", "Unclosed", "Traceback", "Exception ignored"):
        assert trouble not in done.stderr, f"{name} is not clean:\n{done.stderr}"
    return done.stdout


def answer_line(out: str, prefix: str) -> str:
    (line,) = [line for line in out.splitlines() if line.startswith(prefix)]
    return line[len(prefix) :]


def check_core_client(out: str, tmp_path: Path) -> None:
    report = parse_understanding_report(answer_line(out, "answer: "))
    assert (report.width, report.height) == (160, 120)
    assert report.question == "What shape and colour do you see?"
    saved = [Path(line[len("saved: ") :]) for line in out.splitlines() if line.startswith("saved")]
    assert len(saved) == 5
    for path in saved:
        assert path.is_relative_to(tmp_path)
        assert read_generation_report(path.read_bytes()).seed == 7


def check_langchain_image_question(out: str, tmp_path: Path) -> None:
    report = parse_understanding_report(out.strip())
    assert (report.width, report.height) == (200, 150)
    assert report.question == "You answer in one short sentence.\n\nWhat shape is in this picture?"
    assert report.temperature == "0.2"


def check_langchain_streaming(out: str, tmp_path: Path) -> None:
    lines = out.splitlines()
    kinds = [line.split("]", 1)[0] + "]" for line in lines]
    assert kinds[0] == "[status]" and kinds[-2:] == ["[chunk]", "[done]"]
    assert "[status] queued: position 0 of 1" in lines
    # Gradio sends only the latest progress per 0.1 s, so which steps arrive can vary.
    assert any(line.startswith("[status] progress: replica working ") for line in lines)
    assert "[status] log: replica: starting 3 slow steps" in lines
    chunk = answer_line(out, "[chunk] ")
    assert parse_understanding_report(chunk).question == "Count slowly [slow:3]"


def check_langchain_agent(out: str, tmp_path: Path) -> None:
    prompt = "a red fox sleeping in the snow"
    assert answer_line(out, "tool janus_image_generator: ").startswith(
        f"Generated 2 images for the prompt '{prompt}'"
    )
    saved = [Path(line[len("saved: ") :]) for line in out.splitlines() if line.startswith("saved")]
    assert len(saved) == 2
    for path in saved:
        assert read_generation_report(path.read_bytes()).prompt_crc32 == prompt_checksum(prompt)
    final = answer_line(out, "agent: ")
    report = parse_understanding_report(final.split(" The first one: ", 1)[1])
    assert report.question == "Describe this picture in one sentence."
    assert (report.width, report.height) == (384, 384)  # the 768-px image, downscaled


def check_llama_index_query_engine(out: str, tmp_path: Path) -> None:
    report = parse_understanding_report(answer_line(out, "answer: "))
    assert "The lighthouse on the north cape was painted red and white in 1921." in report.question
    assert "Query: When was the lighthouse painted?" in report.question
    assert "ZeroGPU" not in report.question  # only the retrieved passage is sent
    assert (report.width, report.height) == (384, 384)  # text-only: the placeholder image
    assert "source (" in out


def check_llama_index_multimodal_rag(out: str, tmp_path: Path) -> None:
    report = parse_understanding_report(answer_line(out, "answer: "))
    assert (report.width, report.height) == (120, 90)  # the circle, retrieved and sent
    assert "Query: What colour is the circle?" in report.question
    assert "source image (" in out and "A picture of a red circle." in out


def check_eyes_and_brush(out: str, tmp_path: Path, drawn: int) -> None:
    """Draw, then a question about the first picture by the id the drawing tool gave."""
    subject = "a red kite over a green hill"
    tool_lines = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("tool ")]
    drew, looked = tool_lines
    assert repr(subject) in drew
    assert drew.endswith("Image ids: " + ", ".join(f"img-{n}" for n in range(1, drawn + 1)) + ".")
    report = parse_understanding_report(looked)
    assert (report.width, report.height) == (384, 384)  # a drawn 768-px picture, downscaled
    assert report.question == "What is the main colour of this picture?"
    assert answer_line(out, "agent: ").endswith(f"Janus says: {looked}")
    saved = [Path(line[len("saved: ") :]) for line in out.splitlines() if line.startswith("saved")]
    for path in saved:  # the LangChain example saves the artifact's images, named by id
        assert path.is_relative_to(tmp_path) and path.stem.startswith("img-")
        assert read_generation_report(path.read_bytes()).prompt_crc32 == prompt_checksum(subject)


def check_langchain_eyes_and_brush(out: str, tmp_path: Path) -> None:
    check_eyes_and_brush(out, tmp_path, drawn=2)
    assert len([line for line in out.splitlines() if line.startswith("saved: ")]) == 2


def check_llama_index_eyes_and_brush(out: str, tmp_path: Path) -> None:
    check_eyes_and_brush(out, tmp_path, drawn=5)


CASES: dict[str, tuple[tuple[str, ...], Callable[[str, Path], None]]] = {
    "core_client.py": ((), check_core_client),
    "langchain_image_question.py": ((), check_langchain_image_question),
    "langchain_streaming.py": (("Count slowly [slow:3]",), check_langchain_streaming),
    "langchain_agent.py": ((), check_langchain_agent),
    "langchain_eyes_and_brush.py": ((), check_langchain_eyes_and_brush),
    "llama_index_eyes_and_brush.py": ((), check_llama_index_eyes_and_brush),
    "llama_index_query_engine.py": ((), check_llama_index_query_engine),
    "llama_index_multimodal_rag.py": ((), check_llama_index_multimodal_rag),
}


def test_every_example_is_tested() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_docstring_says_how_to_run_it(name: str) -> None:
    source = (EXAMPLES / name).read_text(encoding="utf-8")
    assert source.startswith('"""')
    assert f"python examples/{name}" in source
    assert "JANUS_BASE_URL" in source


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs_against_the_replica(name: str, replica_url: str, tmp_path: Path) -> None:
    args, check = CASES[name]
    out = run_example(name, replica_url, tmp_path, *args)
    check(out, tmp_path)
