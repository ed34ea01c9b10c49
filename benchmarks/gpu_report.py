"""Markdown tables from a ``make gpu-check`` result file, so that the docs cannot drift.

Usage: ``python -m benchmarks.gpu_report [PATH] [--tables device,chain,...]``: PATH is a
``gpu-check.json`` or a folder holding one (default: the newest folder under
``benchmarks/results/``); prints markdown. :func:`render` is what the script writes to
``gpu-check.md`` and what the docs build can call. Files of the first gpu-check
(before ``schema``) render as their one benchmark table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SCHEMA = "augkit-gpu-check/2"
RESULTS = Path(__file__).resolve().parent / "results"
#: The issue's absolute targets for the full chain at B=256 × 30 s, clips/s.
CHAIN_TARGETS = {("H100", "SXM"): 30000, ("H100", "PCIe"): 17000, ("H200", "SXM"): 40000}


def _f(v, spec: str = ",.0f") -> str:
    return "" if v is None else format(v, spec)


def _n(v) -> str:
    """A rate: no decimals from 100 up, three significant digits below."""
    return "" if v is None else format(v, ",.0f" if abs(v) >= 100 else ".3g")


def _pct(v) -> str:
    return "" if v is None else f"{100 * v:.0f}%"


def _table(head: list[str], rows: list[list], align: str = "l") -> list[str]:
    """A markdown table; ``align`` per column, ``l`` or ``r``, the last letter repeating."""
    align = align + align[-1] * (len(head) - len(align))
    out = ["| " + " | ".join(head) + " |",
           "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |"]
    return out + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def _sec(s: dict, name: str) -> dict:
    return s.get("sections", {}).get(name, {})


def device_table(s: dict) -> list[str]:
    d = s.get("device", {})
    where = (f"{d.get('name')} ({d.get('form_factor') or 'form factor unknown'}), "
             f"{d.get('memory_gib')} GiB, driver {d.get('driver')}, sm {d.get('capability')}"
             if d.get("device") == "cuda" else f"CPU only ({d.get('name')}): tiny sizes")
    lines = [f"- device: {where}; {d.get('cpu_count')} CPU cores",
             f"- torch {d.get('torch')} (CUDA {d.get('cuda_runtime')}), torchaudio "
             f"{d.get('torchaudio')}, augkit {d.get('augkit')}, timm {d.get('timm')}",
             f"- run: {s.get('started')}, {s.get('seconds')} s, sizes {s.get('sizes')}"]
    copy = _sec(s, "matrix").get("copy", {})
    if copy.get("large_gbs"):
        spec = d.get("spec_tbs")
        lines.append(f"- copy bandwidth: {copy['large_gbs']:,.0f} GB/s (read + write, "
                     f"{copy['large_bytes'] / 2**20:,.0f} MiB)"
                     + (f", {copy['large_gbs'] / (1e3 * spec):.0%} of the {spec} TB/s spec"
                        if spec else ""))
    return lines


def sections_table(s: dict) -> list[str]:
    rows = [[k, v.get("status"), _f(v.get("wall_s"), ".1f"), _f(v.get("budget_s"), "g"),
             (v.get("reason") or "")[:160].replace("|", "/")]
            for k, v in s.get("sections", {}).items()]
    return _table(["section", "status", "s", "box s", "note"], rows, "llrrl")


def chain_table(s: dict) -> list[str]:
    rows = [[r["batch"], f"{r['seconds']:g} s @ {r['sample_rate']} Hz", _n(r["clips_per_s"]),
             _n(r["gbs"]), _f(r["floor_clips_per_s"]), _pct(r["floor_fraction"]),
             _f(r.get("peak_memory_gib"), ".2f")]
            if "error" not in r else [r["batch"], f"error: {r['error'][:120]}", "", "", "", "",
                                      ""]
            for r in _sec(s, "matrix").get("chain", [])]
    if not rows:
        return []
    steps = " → ".join(next((r["steps"] for r in _sec(s, "matrix")["chain"] if "steps" in r),
                            []))
    return ([f"Full chain ({steps}); the floor is the bytes it must move (byte model in "
             "`benchmarks/gpu_cases.py`) at the measured copy bandwidth.", ""]
            + _table(["B", "clips", "clips/s", "GB/s (model)", "floor clips/s", "of floor",
                      "peak GiB"], rows, "rlr"))


def transforms_table(s: dict) -> list[str]:
    rows = _sec(s, "matrix").get("transforms", [])
    batches = sorted({r["batch"] for r in rows}, reverse=True)
    by = {(r["name"], r["batch"]): r for r in rows}
    names = list(dict.fromkeys(r["name"] for r in rows))
    head = ["transform", "kind"]
    for b in batches:
        head += [f"B={b} clips/s", f"B={b} GB/s", f"B={b} of copy"]
    out = []
    for n in names:
        kind = next(r.get("kind") for r in rows if r["name"] == n)
        line = [n, kind]
        for b in batches:
            r = by.get((n, b), {})
            if "error" in r:
                line += ["error", "", ""]
                continue
            line += [_n(r.get("clips_per_s")), _n(r.get("gbs")),
                     _pct(r.get("copy_fraction")) if kind == "elementwise" else ""]
        out.append(line)
    if not out:
        return []
    first = rows[0]
    return ([f"Each transform, MelFrontend and AmplitudeToDB alone, {first['seconds']:g}-s "
             f"clips at {first['sample_rate']} Hz; GB/s counts one read of the input (two "
             "with a partner or a bank) and one write; \"of copy\": that over the copy "
             "bandwidth of the same size (elementwise transforms only).", ""]
            + _table(head, out, "llr"))


def peers_table(s: dict) -> list[str]:
    p = _sec(s, "peers")
    rows = p.get("rows", [])
    if not rows:
        return [f"Peers: {p.get('status', 'not run')}" + (f" ({p['reason']})" if p.get("reason")
                                                          else "")] if p else []
    by = {(r["name"], r["impl"]): r for r in rows}
    out = []
    for n in dict.fromkeys(r["name"] for r in rows):
        ours, ta, audio = (by.get((n, i), {}) for i in ("augkit", "torch_audiomentations",
                                                        "torchaudio"))
        ratio = p.get("ratios", {}).get(n, {})
        out.append([n, _n(ours.get("clips_per_s")), _n(ta.get("clips_per_s")),
                    _n(ratio.get("torch_audiomentations")),
                    _n(audio.get("clips_per_s")), _n(ratio.get("torchaudio")),
                    _pct(ratio.get("copy_fraction")), audio.get("note", "")])
    lines = [f"B={p.get('batch')} × {p.get('seconds'):g} s at {p.get('sample_rate')} Hz, "
             f"torch-audiomentations {p.get('torch_audiomentations')}; ratios are augkit's "
             "clips/s over the peer's.", ""]
    lines += _table(["transform", "augkit clips/s", "t-a clips/s", "x t-a",
                     "torchaudio clips/s", "x torchaudio", "augkit of copy",
                     "torchaudio call"], out, "lrrrrrrl")
    if p.get("skipped"):
        lines += ["", "Not measured: " + "; ".join(f"{k}: {v}" for k, v in p["skipped"].items())]
    return lines


def sync_lines(s: dict) -> list[str]:
    y = _sec(s, "sync")
    if "counts" not in y:
        return [f"Sync check: {y.get('status', 'not run')}"] if y else []
    c = y["counts"]
    lines = [f"Sync check (`pytest -m cuda` on {', '.join(y.get('files', []))}): "
             f"{c['passed']} passed, {c['failed']} failed, {c['errors']} errors, "
             f"{c['skipped']} skipped, {y.get('seconds')} s"
             + ("" if y.get("cuda") else " (no CUDA device: the cuda tests skip)")]
    lines += [f"- {f['outcome']}: `{f['id']}`: {f['message']}" for f in y.get("failures", [])[:20]]
    return lines


def compile_table(s: dict) -> list[str]:
    c = _sec(s, "compile")
    if "eager_ms" not in c:
        return []
    how = (f"torch.compile(mode={c['mode']!r})" if c.get("mode")
           else f"torch.compile(backend={c.get('backend')!r})")
    rows = [["eager", _f(c["eager_ms"], ".2f"), _n(c["eager_clips_per_s"]), ""],
            [how, _f(c.get("compiled_ms"), ".2f"), _n(c.get("compiled_clips_per_s")),
             _f(c.get("speedup"), ".2f")]]
    return ([f"Full chain, B={c['batch']} × {c['seconds']:g} s, replay of given params; compile "
             f"{c.get('compile_s')} s, max |compiled - eager| {c.get('max_abs_diff')}, "
             f"{c.get('graphs')} graph(s).", ""]
            + _table(["", "ms", "clips/s", "speed-up"], rows, "lr"))


def ablation_lines(s: dict) -> list[str]:
    a = _sec(s, "ablation")
    seq = a.get("sequential", {}).get("runs", [{}])[0].get("result")
    if not seq:
        return [f"Timed ablation: {a.get('status', 'not run')}"] if a else []
    lines = [f"Timed ablation: {seq['clips']} generated clips × {seq['seconds']:g} s at "
             f"{seq['sample_rate']} Hz on the device, {seq['backbone']}, {seq['epochs']} "
             f"epoch(s), data {seq['data_s']} s"
             + (f", peak {seq['peak_memory_gib']} GiB" if seq.get("peak_memory_gib") else "")
             + ".", ""]
    lines += _table(["arm", "time s", "train clips/s", "per epoch"],
                    [[k, v["time_s"], _n(v["train_clips_per_s"]),
                      ", ".join(_n(e) for e in v.get("epoch_train_clips_per_s") or [])]
                     for k, v in seq["arms"].items()], "lrrl")
    x = a.get("extrapolated")
    if x:
        g = x["grid"]
        lines += ["", f"Extrapolated (not measured) to {g['arms']} arms × {g['seeds']} seeds × "
                  f"{g['epochs']} epochs: {x['total_s']:,.0f} s ({x['total_h']:.2f} h), from "
                  "each arm's time per epoch with its first epoch's warm-up (an upper bound)."]
    pk = a.get("packing")
    if pk:
        ref = a.get("pack_reference", a.get("sequential"))
        def row(label: str, wall, r: dict) -> list:
            res = r.get("result", {})
            return [label, wall, res.get("total_s"), _f(res.get("peak_memory_gib"), ".2f"),
                    _f(r.get("smi_peak_mib"), ",")]

        rows = [row(f"1 process ({ref.get('backbone')})", ref.get("wall_s"), ref["runs"][0])]
        rows += [row(f"packed {i + 1}/{pk['processes']} ({pk.get('backbone')})", pk["wall_s"], r)
                 for i, r in enumerate(pk["runs"])]
        sp = a.get("packing_speedup", {})
        lines += ["", f"Packing {pk['processes']} processes on one GPU: speed-up "
                  f"{sp.get('by_process_total')}x (by each process's own time), "
                  f"{sp.get('by_wall')}x (by wall time, start-up included).", ""]
        lines += _table(["run", "wall s", "own s", "peak GiB (torch)", "peak MiB (nvidia-smi)"],
                        rows, "lr")
    return lines


def cpu_lines(s: dict) -> list[str]:
    c = _sec(s, "cpu")
    if "ratio" not in c:
        return []
    return [f"CPU: {c['cpu_count']} cores ({c['threads']} threads used); MelFrontend "
            f"B=1 × {c['seconds']:g} s at 22.05 kHz: {c['augkit']['clips_per_s']:,.1f} clips/s, "
            f"torchaudio MelSpectrogram {c['torchaudio']['clips_per_s']:,.1f}: "
            f"{c['ratio']:.2f}x."]


def goals(s: dict) -> list[dict]:
    """The issue's GPU goals, each ``{goal, measured, met}`` (``met`` None: not measured)."""
    out = []
    d = s.get("device", {})
    m = _sec(s, "matrix")
    chain = max((r for r in m.get("chain", []) if "error" not in r), key=lambda r: r["batch"],
                default=None)
    if chain:
        out.append({"goal": f"full chain at B={chain['batch']} >= 50% of its memory floor",
                    "measured": f"{chain['floor_fraction']:.0%} ({chain['clips_per_s']:,.0f} "
                                f"of {chain['floor_clips_per_s']:,.0f} clips/s)",
                    "met": chain["floor_fraction"] >= 0.5})
        target = next((v for (g, ff), v in CHAIN_TARGETS.items()
                       if g in d.get("name", "") and ff == d.get("form_factor")), None)
        if target:
            out.append({"goal": f"full chain >= {target:,} clips/s on this device",
                        "measured": f"{chain['clips_per_s']:,.0f}",
                        "met": chain["clips_per_s"] >= target})
    rows = m.get("transforms", [])
    top = max((r["batch"] for r in rows), default=None)
    elem = [r for r in rows if r["batch"] == top and r.get("kind") == "elementwise"
            and "copy_fraction" in r]
    if elem:
        low = [f"{r['name']} {r['copy_fraction']:.0%}" for r in elem if r["copy_fraction"] < 0.5]
        out.append({"goal": f"elementwise transforms at B={top} >= 50% of copy bandwidth",
                    "measured": f"lowest {min(r['copy_fraction'] for r in elem):.0%}"
                                + (f"; below: {', '.join(low)}" if low else ""),
                    "met": not low})
    p = _sec(s, "peers")
    shared = {n: r for n, r in p.get("ratios", {}).items() if "torch_audiomentations" in r}
    if shared:
        low = [f"{n} {r['torch_audiomentations']}x" for n, r in shared.items()
               if r["torch_audiomentations"] < 10 and r.get("copy_fraction", 0) < 0.8]
        out.append({"goal": "every shared transform >= 10x torch-audiomentations or >= 80% "
                            "of copy bandwidth",
                    "measured": f"{len(shared) - len(low)} of {len(shared)}"
                                + (f"; below: {', '.join(low)}" if low else ""),
                    "met": not low})
    sp = _sec(s, "ablation").get("packing_speedup")
    if sp:
        out.append({"goal": "packing >= 2x sequential throughput (cnn_small-sized runs)",
                    "measured": f"{sp['by_process_total']}x", "met": sp["by_process_total"] >= 2})
    y = _sec(s, "sync")
    if "counts" in y:
        out.append({"goal": "no host syncs: the cuda tests pass",
                    "measured": f"{y['counts']['passed']} passed, {y['counts']['failed']} failed",
                    "met": (y["status"] == "ok") if y.get("cuda") else None})
    c = _sec(s, "cpu")
    if "ratio" in c:
        out.append({"goal": f"MelFrontend B=1 × 30 s >= 1x torchaudio on {c['threads']} cores",
                    "measured": f"{c['ratio']:.2f}x", "met": c["ratio"] >= 1})
    if s.get("sizes") == "tiny":
        for g in out:
            g["met"] = None  # tiny CPU sizes say nothing about a GPU
    return out


def goals_table(s: dict) -> list[str]:
    gs = s.get("goals") or goals(s)
    return _table(["goal", "measured", "met"],
                  [[g["goal"], g["measured"], {True: "yes", False: "**no**", None: "n/a"}
                    [g["met"]]] for g in gs]) if gs else []


def legacy(s: dict) -> list[str]:
    """The first gpu-check's files: its one benchmark table (clips/s, ratio)."""
    rows = [[r["group"], r["impl"], _f(r["clips_per_s"], ",.1f"),
             _f(r.get("ratio"), ".2f")] for r in s.get("bench", {}).get("table", [])]
    d = s.get("device", {})
    return ([f"- device: {d.get('name')}, torch {d.get('torch')}", ""]
            + _table(["group", "impl", "clips/s", "ratio"], rows, "llr"))


TABLES = {"device": device_table, "sections": sections_table, "goals": goals_table,
          "chain": chain_table, "transforms": transforms_table, "peers": peers_table,
          "sync": sync_lines, "compile": compile_table, "ablation": ablation_lines,
          "cpu": cpu_lines}
TITLES = {"goals": "Goals", "chain": "Full chain", "transforms": "Transforms",
          "peers": "Peers on the same device", "compile": "torch.compile",
          "ablation": "Timed ablation", "cpu": "CPU case", "sections": "Sections"}


def render(s: dict, tables: list[str] | None = None, level: int = 2) -> str:
    """Markdown for the gpu-check summary ``s``: the named ``tables`` (default: all, in
    :data:`TABLES` order), each under a heading of ``level``."""
    if "schema" not in s:
        return "\n".join(legacy(s))
    parts = [] if tables else [f"# gpu-check: {'OK' if s.get('ok') else 'FAILED'}"
                               f"{' (tiny CPU sizes)' if s.get('sizes') == 'tiny' else ''}"]
    for name in tables or TABLES:
        lines = TABLES[name](s)
        if lines:
            title = TITLES.get(name)
            parts.append(("#" * level + f" {title}\n\n" if title else "") + "\n".join(lines))
    return "\n\n".join(parts)


def load(path: Path | None = None) -> dict:
    """A gpu-check summary: ``path`` (a JSON file or a folder), else the newest result."""
    if path is None:
        folders = sorted(p for p in RESULTS.iterdir() if (p / "gpu-check.json").exists())
        if not folders:
            raise FileNotFoundError(f"no gpu-check.json under {RESULTS}")
        path = folders[-1]
    path = path / "gpu-check.json" if path.is_dir() else path
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_report",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("path", nargs="?", type=Path)
    p.add_argument("--tables", default=None, help=f"comma-separated, of {', '.join(TABLES)}")
    a = p.parse_args(argv)
    tables = a.tables.split(",") if a.tables else None
    unknown = set(tables or ()) - set(TABLES)
    if unknown:
        p.error(f"--tables: unknown {sorted(unknown)}")
    print(render(load(a.path), tables))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
