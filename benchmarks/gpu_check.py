"""One-shot GPU check: device facts, the test suite and the benchmarks, summarised in ``--out``.

Usage: ``python -m benchmarks.gpu_check --out DIR [--allow-cpu] [--tests-args ARGS]
[--bench-args ARGS]`` (``make gpu-check OUT=DIR``). Writes ``gpu-check.json``, ``gpu-check.md``,
``tests.xml``, ``tests.log``, ``bench.json`` and ``bench.log`` to DIR and prints the markdown
last. Each pytest run has a wall-clock budget (SIGINT when it runs out, so its partial results
are still written); the two budgets together stay under eight minutes. Exits 0 when the tests
passed, 1 when they did not, 2 when no CUDA device is visible (without ``--allow-cpu``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from .report import REFERENCES, rows

OUTCOMES = ("passed", "failed", "errors", "skipped")


def device_info(allow_cpu: bool) -> dict | None:
    """Device and library versions; None when CUDA is missing and CPU is not allowed."""
    import timm
    import torch
    import torchaudio

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "torchaudio": torchaudio.__version__, "timm": timm.__version__,
            "cuda_runtime": torch.version.cuda}
    if not torch.cuda.is_available():
        return {**info, "device": "cpu", "name": platform.processor() or platform.machine(),
                "threads": torch.get_num_threads()} if allow_cpu else None
    props = torch.cuda.get_device_properties(0)
    try:
        driver = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        driver = None
    return {**info, "device": "cuda", "name": torch.cuda.get_device_name(0),
            "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
            "memory_gib": round(props.total_memory / 2**30, 1), "driver": driver,
            "count": torch.cuda.device_count()}


def run_pytest(args: list[str], log: Path, budget: float, module: str = "pytest") -> dict:
    """Run ``python -m MODULE ARGS`` with output to ``log``; interrupt it after ``budget`` s."""
    start = time.monotonic()
    with log.open("w") as f:
        proc = subprocess.Popen([sys.executable, "-m", module, *args], stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            timed_out = True  # SIGINT first: pytest still writes its junit/benchmark files.
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return {"rc": proc.returncode, "timed_out": timed_out,
            "seconds": round(time.monotonic() - start, 1)}


def junit_summary(path: Path) -> dict:
    """Outcome counts split into CUDA and other test ids, and the failing ids with messages."""
    counts = {kind: dict.fromkeys(OUTCOMES, 0) for kind in ("cuda", "other")}
    failures = []
    if not path.exists():
        return {"counts": counts, "failures": failures, "junit": False}
    for case in ET.parse(path).iter("testcase"):
        test_id = "::".join(filter(None, (case.get("classname"), case.get("name"))))
        kind = "cuda" if "cuda" in test_id.lower() else "other"
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            outcome = "failed" if bad.tag == "failure" else "errors"
            message = (bad.get("message") or "").strip().splitlines()[:1]
            if message in ([], ["collection failure"]):  # the real cause is in the "E" lines
                message = [x for x in (bad.text or "").splitlines() if x.startswith("E ")][-1:]
            failures.append({"id": test_id, "outcome": outcome,
                             "message": message[0][:200] if message else ""})
        else:
            outcome = "skipped" if case.find("skipped") is not None else "passed"
        counts[kind][outcome] += 1
    return {"counts": counts, "failures": failures, "junit": True}


def bench_table(path: Path) -> list[dict]:
    """clips/s per (group, impl) and the ratio to the group's reference impl."""
    if not path.exists():
        return []
    table = []
    for group, impls in sorted(rows(path)[1].items()):
        ref = next((r for r in REFERENCES if r in impls), None)
        for impl, (cps, info) in sorted(impls.items(), key=lambda kv: -kv[1][0]):
            table.append({"group": group, "impl": impl, "clips_per_s": round(cps, 1),
                          "reference": ref,
                          "ratio": round(cps / impls[ref][0], 3) if ref else None,
                          "device_name": info.get("device_name")})
    return table


def markdown(s: dict) -> str:
    """A short human-readable summary of ``gpu-check.json``."""
    d, t, b = s["device"], s["tests"], s["bench"]
    lines = [f"# gpu-check: {'OK' if s['ok'] else 'FAILED'}", "",
             f"- device: {d['device']} {d['name']}"
             + (f", sm {d['capability']}, {d['memory_gib']} GiB, driver {d['driver']}"
                if d["device"] == "cuda" else f", {d['threads']} threads"),
             f"- python {d['python']}, torch {d['torch']} (CUDA {d['cuda_runtime']}), "
             f"torchaudio {d['torchaudio']}, timm {d['timm']}",
             f"- tests: rc {t['rc']}, {t['seconds']} s" + (", TIMED OUT" if t["timed_out"] else "")
             + ("" if t["junit"] else ", no junit xml"),
             f"- bench: rc {b['rc']}, {b['seconds']} s" + (", TIMED OUT" if b["timed_out"] else "")
             + f", {len(b['table'])} rows", "",
             "| group | impl | clips/s | ratio |", "| --- | --- | ---: | ---: |"]
    lines += [f"| {r['group']} | {r['impl']} | {r['clips_per_s']:.1f} | "
              f"{'' if r['ratio'] is None else format(r['ratio'], '.2f')} |" for r in b["table"]]
    lines += ["", "| tests | " + " | ".join(OUTCOMES) + " |", "| --- |" + " ---: |" * len(OUTCOMES)]
    lines += [f"| {kind} | " + " | ".join(str(n) for n in c.values()) + " |"
              for kind, c in t["counts"].items()]
    ab = s.get("ablation", {})
    if "result" in ab:
        r = ab["result"]
        lines += ["", f"Timed ablation: {r['clips']} clips x {r['seconds']} s at "
                  f"{r['sample_rate']} Hz on {r['device']}, {r['backbone']}, {r['epochs']} "
                  f"epochs, data {r['data_s']} s, total {r['total_s']} s"]
        lines += [f"- {arm}: {v['train_clips_per_s']} train clips/s, {v['time_s']} s"
                  for arm, v in r["arms"].items()]
    elif ab:
        lines += ["", f"Timed ablation: rc {ab.get('rc')}, {ab.get('error', '')}"]
    if t["failures"]:
        lines += ["", f"Failures ({len(t['failures'])}, first 25):"]
        lines += [f"- {f['outcome']}: `{f['id']}`: {f['message']}" for f in t["failures"][:25]]
    lines += ["", f"total {s['seconds']} s; files in {s['out']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(".gpu-check"))
    p.add_argument("--allow-cpu", action="store_true", help="go on without a CUDA device")
    p.add_argument("--tests-args", default="", help="extra pytest arguments for the tests")
    p.add_argument("--bench-args", default="", help="extra pytest arguments for the benchmarks")
    p.add_argument("--ablation-args", default="",
                   help="extra arguments for python -m experiments.timed_ablation")
    p.add_argument("--tests-budget", type=float, default=210.0, help="seconds for the tests")
    p.add_argument("--bench-budget", type=float, default=140.0, help="seconds for the benchmarks")
    p.add_argument("--ablation-budget", type=float, default=90.0,
                   help="seconds for the timed GTZAN-shaped ablation")
    a = p.parse_args(argv)
    start = time.monotonic()
    device = device_info(a.allow_cpu)
    if device is None:
        print("gpu-check: no CUDA device visible (torch.cuda.is_available() is False)")
        return 2
    print(f"gpu-check: {device}", flush=True)
    out = a.out
    out.mkdir(parents=True, exist_ok=True)

    common = ["-q", "-p", "no:cacheprovider", "--continue-on-collection-errors"]
    if importlib.util.find_spec("pytest_timeout"):
        common.append("--timeout=120")
    tests = run_pytest(["tests", *common, "-rfEs", f"--junitxml={out / 'tests.xml'}",
                        *shlex.split(a.tests_args)], out / "tests.log", a.tests_budget)
    tests.update(junit_summary(out / "tests.xml"))
    print(f"gpu-check: tests rc {tests['rc']} in {tests['seconds']} s", flush=True)
    bench = run_pytest(["benchmarks", *common, f"--benchmark-json={out / 'bench.json'}",
                        "--benchmark-min-rounds=3", "--benchmark-max-time=0.5",
                        "--benchmark-warmup=off", *shlex.split(a.bench_args)],
                       out / "bench.log", a.bench_budget)
    try:
        bench["table"] = bench_table(out / "bench.json")
    except (ValueError, KeyError) as e:  # a truncated or foreign JSON file
        bench["table"], bench["error"] = [], f"{type(e).__name__}: {e}"

    # 1000 GTZAN-shaped clips of 30 s held on the device, ResNet18, the augkit preset's chain.
    ablation = run_pytest(["--device", device["device"], "--out", str(out),
                           *shlex.split(a.ablation_args)], out / "ablation.log",
                          a.ablation_budget, module="experiments.timed_ablation")
    try:
        ablation["result"] = json.loads((out / "timed_ablation.json").read_text())
    except (OSError, ValueError) as e:
        ablation["error"] = f"{type(e).__name__}: {e}"

    failed = sum(c["failed"] + c["errors"] for c in tests["counts"].values())
    ok = tests["rc"] == 0 and not tests["timed_out"] and not failed
    summary = {"ok": ok, "device": device, "tests": tests, "bench": bench, "ablation": ablation,
               "seconds": round(time.monotonic() - start, 1), "out": str(out)}
    (out / "gpu-check.json").write_text(json.dumps(summary, indent=2) + "\n")
    md = markdown(summary)
    (out / "gpu-check.md").write_text(md + "\n")
    print(md)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
