"""Import cost of each package, measured in fresh interpreters.

``import X`` is timed with ``perf_counter`` inside a new ``python`` process (after one untimed
run that warms the bytecode cache), and the same process lists which heavy libraries the import
dragged in, so "``import langchain_janus`` loads neither llama_index nor Pillow" can be read
off the table as well as checked by ``tests/test_imports.py``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["HEAVY", "MODULES", "measure_import", "measure_imports"]

MODULES = ["aiohttp", "gradio_client", "janus_space", "langchain_janus", "llama_index_janus"]
HEAVY = [
    "PIL",
    "numpy",
    "gradio",
    "gradio_client",
    "httpx",
    "aiohttp",
    "langchain_core",
    "llama_index",
    "janus_space",
]

_PROBE = """
import json, sys, time
started = time.perf_counter()
try:
    import {module}
    error = None
except Exception as exc:
    error = f"{{type(exc).__name__}}: {{exc}}"
elapsed = time.perf_counter() - started
heavy = sorted({{name.split(".")[0] for name in sys.modules}} & set({heavy!r}) - {{{module!r}}})
print(json.dumps({{"seconds": elapsed, "heavy": heavy, "error": error}}))
"""


def measure_import(module: str, *, runs: int = 3, cwd: Path | None = None) -> dict[str, Any]:
    """Median wall time of ``import module`` over ``runs`` fresh interpreters, and what it loads."""
    code = _PROBE.format(module=module, heavy=HEAVY)
    samples: list[dict[str, Any]] = []
    for _ in range(runs + 1):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120
        )
        samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
    timed = samples[1:]  # the first run compiles bytecode and fills the page cache
    result = dict(timed[-1])
    result["seconds"] = statistics.median(s["seconds"] for s in timed)
    if module in ("langchain_janus", "llama_index_janus") and result["error"] is None:
        result["error"] = _missing_adapter(module, cwd)
    return result


def _missing_adapter(module: str, cwd: Path | None) -> str | None:
    """A namespace package without ``__init__`` imports fine but is not written yet."""
    code = f"import {module}; print(getattr({module}, '__file__', None) or '')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)
    return None if done.stdout.strip() else "no __init__.py yet (being written)"


def measure_imports(cwd: Path | None = None, runs: int = 3) -> dict[str, dict[str, Any]]:
    """``measure_import`` for every module of ``MODULES``."""
    return {module: measure_import(module, runs=runs, cwd=cwd) for module in MODULES}
