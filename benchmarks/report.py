"""Turn the workers' JSON into the printed tables and the verdict on the issue's targets.

Timings are reported, never asserted: the verdict lines say met or missed and by how much.

Two views of the 100 ms link:

* ``RT``: round trips read off the proxy's request trace (``worker.round_trips``): waves of
  requests the client sent one after the other, plus one per wave that opened a TCP
  connection first. This is the protocol's cost, independent of server think time; the table
  shows the median, the verdict compares the fewest a call needed.
* ``≈RTT``: ``(median over the link - median locally) / 100 ms``, what the link actually cost a
  call; lower than RT when the server's own work overlaps a round trip.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KINDS", "render", "targets"]

KINDS = {
    "text": "text-only question (the Space needs an image: a grey placeholder is sent)",
    "image": "question + 384 px JPEG (model-sized, ~45 KB)",
    "photo": "question + 2000x1500 JPEG photo (~1 MB)",
    "generate": "image generation (5 images downloaded)",
}
_ABBREV = {
    "config": "c",
    "info": "i",
    "heartbeat": "h",
    "upload": "u",
    "join": "j",
    "stream": "s",
    "download": "d",
    "cancel": "x",
    "other": "o",
}
BASELINE = "floor"
TARGET_KINDS = ("text", "image", "generate")


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"


def _kinds(by_kind: dict[str, float]) -> str:
    order = list(_ABBREV)
    parts = [
        f"{_ABBREV.get(kind, kind)}{_num(count)}"
        for kind, count in sorted(
            by_kind.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99
        )
    ]
    return " ".join(parts)


def _pct(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{(value / base - 1) * 100:+.1f}%"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def _measured(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        key: w for key, w in results["workers"].items() if "skipped" not in w and "failed" not in w
    }


def _effective_rtts(worker: dict[str, Any], kind: str, rtt: float) -> float | None:
    local = worker.get("local", {}).get(kind, {})
    delayed = worker.get("delayed", {}).get(kind, {})
    if "median" not in local or "median" not in delayed:
        return None
    value: float = (delayed["median"] - local["median"]) / rtt
    return value


def _paired_ratio(mine: list[float] | None, base: list[float] | None) -> float | None:
    """Median over rounds of (this call / the floor's call in the same round) - 1.

    The rounds interleave the clients, so pairing them cancels slow drifts of the server.
    """
    if not mine or not base or len(mine) != len(base):
        return None
    ratios = sorted(m / b for m, b in zip(mine, base, strict=True))
    middle = len(ratios) // 2
    median = ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
    return median - 1


def _per_call_tables(results: dict[str, Any], out: list[str]) -> None:
    rtt = results["config"]["rtt"]
    workers = _measured(results)
    floor = workers.get(BASELINE, {})
    for kind, title in KINDS.items():
        rows = []
        for key, worker in workers.items():
            local = worker.get("local", {}).get(kind)
            delayed = worker.get("delayed", {}).get(kind) or {}
            if local is None:
                continue
            if "error" in local:
                rows.append([worker["name"], f"error: {local['error'][:70]}"] + [""] * 9)
                continue
            base = floor.get("local", {}).get(kind, {})
            base_d = floor.get("delayed", {}).get(kind, {})
            is_floor = key == BASELINE
            rows.append(
                [
                    worker["name"],
                    _ms(local["median"]),
                    _ms(local["p90"]),
                    "floor" if is_floor else _pct(local["median"], base.get("median")),
                    f"{_num(local['exchanges'])} ({_kinds(local['by_kind'])})",
                    _ms(delayed.get("median")),
                    _ms(delayed.get("p90")),
                    "floor" if is_floor else _pct(delayed.get("median"), base_d.get("median")),
                    _num(delayed.get("round_trips"), 1),
                    _num(_effective_rtts(worker, kind, rtt)),
                    _num(delayed.get("connections")),
                ]
            )
        if rows:
            out += ["", f"## {title}"]
            out.append(
                _table(
                    [
                        "client",
                        "p50",
                        "p90",
                        "vs floor",
                        "HTTP/call",
                        "100ms p50",
                        "p90",
                        "vs floor",
                        "RT",
                        "≈RTT",
                        "new TCP/call",
                    ],
                    rows,
                )
            )


def _cold_table(results: dict[str, Any], out: list[str]) -> None:
    rows = []
    for worker in _measured(results).values():
        local = worker.get("local", {}).get("cold")
        delayed = worker.get("delayed", {}).get("cold") or {}
        if not local:
            continue
        rows.append(
            [
                worker["name"],
                _ms(local["latency"]),
                f"{local['exchanges']:.0f} ({_kinds(local['by_kind'])})",
                _ms(delayed.get("latency")),
                _num(delayed.get("round_trips"), 0),
                _num(delayed.get("connections"), 0),
            ]
        )
    out += ["", "## cold start: create the client + its first text-only call"]
    out.append(_table(["client", "local", "HTTP", "100ms link", "RT", "TCP opened"], rows))


def _photo_table(results: dict[str, Any], out: list[str]) -> None:
    photo_bytes = results["photo_bytes"]
    rows = []
    for worker in _measured(results).values():
        photo = worker.get("local", {}).get("photo")
        if not photo or "median" not in photo:
            continue
        delayed = worker.get("delayed", {}).get("photo") or {}
        rows.append(
            [
                worker["name"],
                f"{photo['bytes_up']:,.0f}",
                f"{photo['bytes_up'] / photo_bytes:.3f}",
                ", ".join(photo["seen_sizes"]) or "?",
                _ms(photo["median"]),
                _ms(delayed.get("median")),
            ]
        )
    out += [
        "",
        f"## photo: original {photo_bytes:,} bytes, {results['photo_size']}; the model "
        f"sees {results['model_sees']} (Janus resizes the long side to 384)",
    ]
    out.append(
        _table(
            ["client", "bytes sent/call", "x original", "stand-in saw", "local p50", "100ms p50"],
            rows,
        )
    )


def _parallel_table(results: dict[str, Any], out: list[str]) -> None:
    config = results["config"]
    workers = _measured(results)
    gc_wall = workers.get("gradio_client", {}).get("parallel", {}).get("wall")
    rows = []
    for worker in workers.values():
        par = worker.get("parallel")
        if not par:
            continue
        rows.append(
            [
                worker["name"],
                f"{par['wall']:.2f}" + (" (gave up)" if par["timed_out"] else ""),
                f"{par['correct']}/{par['calls']}",
                str(par["lost"]),
                str(par["swapped"]),
                str(par["connections"]),
                str(par["peak_open"]),
                f"{par['exchanges']} ({_kinds(par['by_kind'])})",
                f"{gc_wall / par['wall']:.1f}x" if gc_wall else "-",
            ]
        )
    out += [
        "",
        f"## {config['parallel']} parallel text-only calls through one client "
        f"(local link; replica runs {config['concurrency_limit']} jobs at once; a batch is "
        f"given up after {config['parallel_timeout']:.0f} s)",
    ]
    out.append(
        _table(
            [
                "client",
                "wall s",
                "correct",
                "lost",
                "swapped",
                "TCP opened",
                "peak open",
                "HTTP total",
                "gradio_client wall / this",
            ],
            rows,
        )
    )


def render(results: dict[str, Any]) -> str:
    """All tables and the targets' verdict as one printable string."""
    config = results["config"]
    out = [
        f"janus-space benchmark: {config['replica']}; {config['calls']['local']} timed calls per "
        f"row locally, {config['calls']['delayed']} over the {config['rtt'] * 1000:.0f} ms "
        "round-trip link (which also charges 1 RTT per new TCP connection); times in ms.",
        "HTTP/call = exchanges counted at the proxy (c config, i info, h heartbeat, u upload, "
        "j join, s stream, d download, x cancel). RT = round trips read off the request trace; "
        "≈RTT = (100ms p50 - local p50) / 100 ms.",
    ]
    _per_call_tables(results, out)
    _cold_table(results, out)
    _photo_table(results, out)
    _parallel_table(results, out)
    out += ["", "## memory: peak RSS of each worker process (VmHWM, MB; 'at start' = harness only)"]
    out.append(
        _table(
            ["client", "peak RSS", "at start"],
            [
                [w["name"], f"{w['rss_peak_mb']:.0f}", f"{w['rss_start_mb']:.0f}"]
                for w in _measured(results).values()
                if "rss_peak_mb" in w
            ],
        )
    )
    if results.get("imports"):
        out += ["", "## import time (fresh interpreter, median of 3) and the heavy packages loaded"]
        out.append(
            _table(
                ["import", "ms", "also loads"],
                [
                    [
                        f"import {module}",
                        "-" if info.get("error") else _ms(info["seconds"]),
                        info.get("error") or (", ".join(info["heavy"]) or "(none)"),
                    ]
                    for module, info in results["imports"].items()
                ],
            )
        )
    skipped = [
        f"- {w.get('name', key)}: {w.get('skipped') or w.get('failed')}"
        for key, w in results["workers"].items()
        if "skipped" in w or "failed" in w
    ]
    if skipped:
        out += ["", "## not measured", *skipped]
    out += ["", "## targets (issue 7)", *targets(results)]
    return "\n".join(out)


def targets(results: dict[str, Any]) -> list[str]:
    """One line per target: MET / MISSED / N/A with the figures behind it."""
    rtt = results["config"]["rtt"]
    workers = _measured(results)
    core, floor = workers.get("core"), workers.get(BASELINE)
    lines: list[str] = []

    def verdict(ok: bool | None, text: str) -> None:
        lines.append(f"[{'N/A' if ok is None else 'MET' if ok else 'MISSED'}] {text}")

    if core and floor:
        for kind in TARGET_KINDS:
            c, f = core["local"].get(kind, {}), floor["local"].get(kind, {})
            if "median" in c and "median" in f:
                ratio = c["median"] / f["median"] - 1
                paired = _paired_ratio(c.get("samples"), f.get("samples"))
                verdict(
                    ratio <= 0.05,
                    f"{kind}: core within 5% of the floor locally "
                    f"(p50 {_ms(c['median'])} vs {_ms(f['median'])} ms: {ratio * 100:+.1f}%"
                    + ("" if paired is None else f"; median of per-round ratios {paired:+.1%}")
                    + ")",
                )
        for kind in TARGET_KINDS:
            # The fewest round trips a call needed is the protocol's own cost; the median can
            # carry a reconnection after uvicorn's 5 s keep-alive, whichever client it hits.
            c, f = core["delayed"].get(kind, {}), floor["delayed"].get(kind, {})
            if c.get("round_trips_min") is None or f.get("round_trips_min") is None:
                continue
            verdict(
                c["round_trips_min"] < f["round_trips_min"],
                f"{kind}: strictly fewer round trips than the floor over the 100 ms link "
                f"({c['round_trips_min']} vs {f['round_trips_min']} RT at least, "
                f"p50 {_num(c['round_trips'], 1)} vs {_num(f['round_trips'], 1)}; "
                f"≈{_num(_effective_rtts(core, kind, rtt))} vs "
                f"≈{_num(_effective_rtts(floor, kind, rtt))} RTT of latency; "
                f"{_num(c['exchanges'])} vs {_num(f['exchanges'])} HTTP exchanges)",
            )
    else:
        verdict(None, "the core or the floor did not run")
    photo = (core or {}).get("local", {}).get("photo", {})
    if "bytes_up" in photo:
        share = photo["bytes_up"] / results["photo_bytes"]
        sizes = list(photo["seen_sizes"])
        verdict(
            share <= 0.1,
            f"photo: at most a tenth of the original bytes sent "
            f"({photo['bytes_up']:,.0f} of {results['photo_bytes']:,}: {share:.3f})",
        )
        verdict(
            sizes == [results["model_sees"]],
            f"photo: the stand-in model saw "
            f"{', '.join(sizes)}; the real model would see {results['model_sees']}",
        )
    par = (core or {}).get("parallel")
    if par:
        verdict(
            par["connections"] <= 4,
            f"parallel: at most 4 TCP connections "
            f"({par['connections']} opened, at most {par['peak_open']} open at once)",
        )
        verdict(
            par["lost"] == 0 and par["swapped"] == 0,
            f"parallel: no answer lost or swapped ({par['correct']}/{par['calls']} correct)",
        )
        for key in ("gradio_client", "gradio_client_pool"):
            other = workers.get(key, {}).get("parallel")
            if not other:
                continue
            speed = other["wall"] / par["wall"]
            note = ""
            if other["lost"]:
                note = (
                    f"; it lost {other['lost']} of {other['calls']} answers and was given "
                    f"up at {other['wall']:.0f} s, so the true ratio is higher"
                )
            verdict(
                speed >= 3,
                f"parallel: at least 3x faster than {workers[key]['name']} "
                f"({par['wall']:.2f} s vs {other['wall']:.2f} s: {speed:.1f}x{note})",
            )
    imports = results.get("imports") or {}
    for module, other_framework in (
        ("langchain_janus", "llama_index"),
        ("llama_index_janus", "langchain_core"),
    ):
        info = imports.get(module)
        if not info or info.get("error"):
            verdict(None, f"import {module}: {(info or {}).get('error') or 'not measured'}")
            continue
        heavy = set(info["heavy"])
        bad = heavy & {other_framework, "gradio", "gradio_client"}
        verdict(
            not bad,
            f"import {module} loads no {other_framework}, gradio or gradio_client "
            f"(it loads: {', '.join(sorted(heavy)) or 'nothing heavy'}; Pillow is checked "
            "against the framework's own imports by tests/test_imports.py)",
        )
    return lines
