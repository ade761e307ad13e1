"""Turn the workers' JSON into the printed tables and the verdict on the issue's targets.

Timings are reported, never asserted: the verdict lines say met or missed and by how much.
"Round trips" over the delayed link are effective ones, ``(median over the 100 ms link -
median locally) / 100 ms``: what the link actually cost a call, whatever the client overlapped.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KINDS", "render", "targets"]

KINDS = {
    "text": "text-only question (the Space needs an image: a placeholder is sent)",
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


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def _kinds(by_kind: dict[str, float]) -> str:
    parts = []
    for kind, count in sorted(by_kind.items(), key=lambda kv: list(_ABBREV).index(kv[0])):
        value = f"{count:.2f}".rstrip("0").rstrip(".")
        parts.append(f"{_ABBREV.get(kind, kind)}{value}")
    return " ".join(parts)


def _pct(value: float, base: float) -> str:
    return f"{(value / base - 1) * 100:+.1f}%"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = lambda cells: "  ".join(  # noqa: E731
        str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
    )
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def _workers(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        key: w for key, w in results["workers"].items() if "skipped" not in w and "failed" not in w
    }


def _rtts(worker: dict[str, Any], kind: str, rtt: float) -> float | None:
    local, delayed = worker.get("local", {}).get(kind, {}), worker.get("delayed", {}).get(kind, {})
    if "median" not in local or "median" not in delayed:
        return None
    value: float = (delayed["median"] - local["median"]) / rtt
    return value


def render(results: dict[str, Any]) -> str:
    """All tables as one printable string."""
    config = results["config"]
    rtt = config["rtt"]
    workers = _workers(results)
    out: list[str] = []
    out.append(
        f"janus-space benchmark — replica {config['replica']}, {config['calls']['local']} calls "
        f"per row locally, {config['calls']['delayed']} over the {rtt * 1000:.0f} ms link "
        f"(+1 RTT per new TCP connection); times in ms"
    )
    out.append("HTTP/call: exchanges counted at the proxy (c config, i info, h heartbeat, "
               "u upload, j join, s stream, d download, x cancel)")
    for kind, title in KINDS.items():
        rows = []
        floor = workers.get(BASELINE, {})
        for key, worker in workers.items():
            local = worker.get("local", {}).get(kind)
            delayed = worker.get("delayed", {}).get(kind)
            if local is None:
                continue
            if "error" in local:
                rows.append([worker["local"]["name"], f"error: {local['error'][:60]}"] + [""] * 8)
                continue
            base = floor.get("local", {}).get(kind, {})
            base_d = floor.get("delayed", {}).get(kind, {})
            vs = _pct(local["median"], base["median"]) if "median" in base else "-"
            rtts = _rtts(worker, kind, rtt)
            d_med = delayed.get("median") if delayed else None
            rows.append([
                worker["local"]["name"],
                _ms(local["median"]),
                _ms(local["p90"]),
                vs if key != BASELINE else "floor",
                f"{local['exchanges']:.2f}".rstrip("0").rstrip(".") + f" ({_kinds(local['by_kind'])})",
                _ms(d_med),
                _ms(delayed.get("p90") if delayed else None),
                _pct(d_med, base_d["median"]) if d_med and "median" in base_d and key != BASELINE
                else ("floor" if key == BASELINE else "-"),
                "-" if rtts is None else f"{rtts:.2f}",
                f"{delayed['connections']:.2f}" if delayed and "connections" in delayed else "-",
            ])
        if rows:
            out.append("")
            out.append(f"## {title}")
            out.append(_table(
                ["client", "p50", "p90", "vs floor", "HTTP/call", "100ms p50", "p90",
                 "vs floor", "≈RTT", "new TCP/call"],
                rows,
            ))
    out.append("")
    out.append("## cold start: create the client + first text-only call")
    rows = []
    for worker in workers.values():
        local, delayed = worker.get("local", {}).get("cold"), worker.get("delayed", {}).get("cold")
        if not local:
            continue
        rows.append([
            worker["local"]["name"],
            _ms(local["latency"]),
            f"{local['exchanges']:.0f} ({_kinds(local['by_kind'])})",
            _ms(delayed["latency"]) if delayed else "-",
            f"{delayed['connections']:.0f}" if delayed else "-",
        ])
    out.append(_table(["client", "local", "HTTP", "100ms link", "TCP conns"], rows))
    out.append("")
    photo_bytes, photo_size = results["photo_bytes"], results["photo_size"]
    out.append(f"## photo upload: original {photo_bytes:,} bytes, {photo_size}; "
               f"Janus would see {results['model_sees']}")
    rows = []
    for worker in workers.values():
        photo = worker.get("local", {}).get("photo")
        if not photo or "median" not in photo:
            continue
        delayed = worker.get("delayed", {}).get("photo", {})
        rows.append([
            worker["local"]["name"],
            f"{photo['bytes_up']:,.0f}",
            f"{photo['bytes_up'] / photo_bytes:.3f}",
            ", ".join(photo["seen_sizes"]) or "?",
            _ms(photo["median"]),
            _ms(delayed.get("median")),
        ])
    out.append(_table(
        ["client", "bytes sent/call", "x original", "model input seen", "local p50", "100ms p50"],
        rows,
    ))
    out.append("")
    out.append(f"## {config['parallel']} parallel text-only calls through one client (local link)")
    rows = []
    gc_wall = workers.get("gradio_client", {}).get("parallel", {}).get("wall")
    for worker in workers.values():
        par = worker.get("parallel")
        if not par:
            continue
        wall = f"{par['wall']:.2f}" + (" (timeout)" if par["timed_out"] else "")
        speed = f"{gc_wall / par['wall']:.1f}x" if gc_wall else "-"
        rows.append([
            worker["local"]["name"],
            wall,
            f"{par['correct']}/{par['calls']}",
            str(par["lost"]),
            str(par["swapped"]),
            str(par["connections"]),
            str(par["peak_open"]),
            f"{par['exchanges']} ({_kinds(par['by_kind'])})",
            speed,
        ])
    out.append(_table(
        ["client", "wall s", "correct", "lost", "swapped", "TCP opened", "peak open",
         "HTTP total", "vs gradio_client"],
        rows,
    ))
    out.append("")
    out.append("## memory: peak RSS of the worker process (MB; harness alone ≈ the 'at start' column)")
    rows = [
        [w.get("local", {}).get("name", key), f"{w['rss_peak_mb']:.0f}", f"{w['rss_start_mb']:.0f}"]
        for key, w in results["workers"].items()
        if "rss_peak_mb" in w and "skipped" not in w
    ]
    out.append(_table(["client", "peak RSS", "at start"], rows))
    if results.get("imports"):
        out.append("")
        out.append("## import time (fresh interpreter, median of 3) and heavy modules it loads")
        rows = []
        for module, info in results["imports"].items():
            rows.append([
                f"import {module}",
                "-" if info.get("error") else _ms(info["seconds"]),
                info.get("error") or (", ".join(info["heavy"]) or "(none)"),
            ])
        out.append(_table(["import", "ms", "also loads"], rows))
    skipped = [
        f"- {key}: {w.get('skipped') or w.get('failed')}"
        for key, w in results["workers"].items()
        if "skipped" in w or "failed" in w
    ]
    if skipped:
        out.append("")
        out.append("## not measured")
        out.extend(skipped)
    out.append("")
    out.append("## targets")
    out.extend(targets(results))
    return "\n".join(out)


def targets(results: dict[str, Any]) -> list[str]:
    """One line per target of issue 7: MET / MISSED / N/A with the figures behind it."""
    rtt = results["config"]["rtt"]
    workers = _workers(results)
    core, floor = workers.get("core"), workers.get(BASELINE)
    lines: list[str] = []

    def verdict(ok: bool | None, text: str) -> None:
        lines.append(f"[{'N/A' if ok is None else 'MET' if ok else 'MISSED'}] {text}")

    if not core or not floor:
        verdict(None, "core or floor did not run")
        return lines
    for kind in ("text", "image", "generate"):
        c, f = core["local"].get(kind, {}), floor["local"].get(kind, {})
        if "median" in c and "median" in f:
            ratio = c["median"] / f["median"] - 1
            verdict(ratio <= 0.05, f"{kind}: core within 5% of the floor locally "
                    f"({_ms(c['median'])} vs {_ms(f['median'])} ms, {ratio * 100:+.1f}%)")
    for kind in ("text", "image", "generate"):
        c_r, f_r = _rtts(core, kind, rtt), _rtts(floor, kind, rtt)
        c_x = core["delayed"].get(kind, {}).get("exchanges")
        f_x = floor["delayed"].get(kind, {}).get("exchanges")
        if c_r is not None and f_r is not None:
            verdict(c_r < f_r - 0.25, f"{kind}: fewer round trips than the floor over the 100 ms "
                    f"link (≈{c_r:.2f} vs ≈{f_r:.2f} RTT; {c_x:g} vs {f_x:g} HTTP exchanges)")
    photo = core["local"].get("photo", {})
    if "bytes_up" in photo:
        share = photo["bytes_up"] / results["photo_bytes"]
        sizes = list(photo["seen_sizes"])
        verdict(share <= 0.1, f"photo: at most a tenth of the original bytes "
                f"({photo['bytes_up']:,.0f} of {results['photo_bytes']:,}: {share:.3f})")
        verdict(sizes == [results["model_sees"]], f"photo: the stand-in model sees "
                f"{', '.join(sizes)}; Janus would see {results['model_sees']}")
    par = core.get("parallel")
    if par:
        verdict(par["connections"] <= 4, f"parallel: at most 4 TCP connections "
                f"({par['connections']} opened, {par['peak_open']} open at once)")
        verdict(par["lost"] == 0 and par["swapped"] == 0, f"parallel: no answer lost or swapped "
                f"({par['correct']}/{par['calls']} correct, {par['lost']} lost, "
                f"{par['swapped']} swapped)")
        gc = workers.get("gradio_client", {}).get("parallel")
        if gc:
            speed = gc["wall"] / par["wall"]
            note = (f"; gradio_client lost {gc['lost']} answers and stopped at the "
                    f"{gc['wall']:.0f} s time limit, so this is a lower bound"
                    if gc["lost"] else "")
            verdict(speed >= 3, f"parallel: at least 3x faster than gradio_client "
                    f"({par['wall']:.2f} s vs {gc['wall']:.2f} s: {speed:.1f}x{note})")
        else:
            verdict(None, "parallel: gradio_client did not run")
    imports = results.get("imports") or {}
    for module, other in (("langchain_janus", "llama_index"), ("llama_index_janus", "langchain_core")):
        info = imports.get(module)
        if not info or info.get("error"):
            verdict(None, f"import {module}: not importable yet ({(info or {}).get('error')})")
            continue
        heavy = set(info["heavy"])
        verdict(other not in heavy and "gradio" not in heavy and "gradio_client" not in heavy,
                f"import {module} loads no {other}, gradio or gradio_client "
                f"(loads: {', '.join(sorted(heavy)) or 'none'}; Pillow is checked against the "
                f"framework's own imports by tests/test_imports.py)")
    return lines
