"""Performance benchmark of janus-space against a hand-written floor and gradio_client.

Run ``python benchmarks/run.py`` (or ``--quick``) from the repository root; see
``docs/benchmarks.md``. Everything talks to a local replica of the Space through counting
(and optionally delaying) TCP proxies bound to 127.0.0.1 only.
"""
