"""``make gpu-check``: augkit's GPU figures in one run of at most six minutes.

Usage: ``python -m benchmarks.gpu_check --out DIR [--allow-cpu] [--sections a,b]
[--budget SECTION=SECONDS ...]`` (``make gpu-check OUT=DIR``; without a GPU:
``make gpu-check GPU_CHECK_ARGS=--allow-cpu``).

Sections, most valuable first, each with its own time budget (seconds, on a GPU):

1. ``matrix`` (75): the device's copy bandwidth; the full chain (the ``augkit`` preset's
   chain plus a filter, coloured noise and reverb) at B=256, 64, 16 × 30 s at 22.05 kHz
   against its memory floor; every random transform, ``MelFrontend`` and
   ``AmplitudeToDB`` at B=256 and 16 × 5 s at 16 kHz, clips/s and GB/s, the
   elementwise ones as a fraction of the copy bandwidth (:mod:`benchmarks.gpu_bench`);
2. ``peers`` (40): torch-audiomentations 0.12 on CUDA inputs and torchaudio's
   equivalents at B=64 × 5 s, with ratios;
3. ``sync`` (40): the ``cuda``-marked tests (``pytest -m cuda``; every transform and the
   chain under ``torch.cuda.set_sync_debug_mode("error")``), in a subprocess;
4. ``compile`` (40): the chain at B=16, replay of given params, eager vs
   ``torch.compile(mode="reduce-overhead")``, in a subprocess;
5. ``ablation`` (100): ``experiments.timed_ablation`` alone, extrapolated to the preset's
   grid, and 4 processes packed on the GPU (2 on CPU) (:mod:`benchmarks.gpu_ablation`);
6. ``cpu`` (15): the CPU core count and ``MelFrontend`` vs torchaudio, B=1 × 30 s, on all
   cores.

The script stops starting sections 1-5 when their total box (``--total``, 300 s) is spent
(with start-up, the CPU case and a late stop of at most ``BACKSTOP_S``: under 6 minutes),
and records every section as ``ok``, ``cut`` (its box ended it; what it measured is
kept, ``remaining`` lists what it did not), ``error`` or ``skipped``, with why.
After each section it rewrites, atomically, the only files in ``DIR``:
``gpu-check.json`` (everything), ``gpu-check.md`` (the tables of
:mod:`benchmarks.gpu_report`) and ``logs.tar.gz`` (this run's log, the pytest log and
junit XML, the compile and ablation logs and JSON files).

``--allow-cpu`` runs every section at tiny sizes without CUDA (CI). Exit status: 0
when no section failed and the sync tests passed, 1 otherwise, 2 when no CUDA device
is visible and ``--allow-cpu`` is not given.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import gpu_ablation, gpu_bench, gpu_report
from .gpu_bench import FULL, ROOT, TINY, Box, Cut, child_env, run_budgeted, write_json

SECTIONS = ("matrix", "peers", "sync", "compile", "ablation", "cpu")
BUDGETS = {"full": {"matrix": 75, "peers": 40, "sync": 40, "compile": 40, "ablation": 100,
                    "cpu": 15},
           "tiny": {"matrix": 40, "peers": 20, "sync": 60, "compile": 60, "ablation": 90,
                    "cpu": 10}}
#: The total box of sections 1-5; the CPU case (its own box) always runs after them.
TOTAL = {"full": 300.0, "tiny": 150.0}
#: How long a section may overrun its box before SIGALRM stops it (children get 4 s of
#: SIGINT grace before SIGKILL, so this is longer).
BACKSTOP_S = 6.0
OUTCOMES = ("passed", "failed", "errors", "skipped")
#: Peak HBM bandwidth by device (TB/s, vendor figures), to set the measured copy against.
SPEC_TBS = {"H100 SXM": 3.35, "H100 PCIe": 2.0, "H100 NVL": 3.9, "H200": 4.8, "A100": 2.0}


def form_factor(name: str, power_w: float | None = None) -> str | None:
    """``"SXM"``, ``"PCIe"`` or ``"NVL"`` for an H100/H200 (NVIDIA names the PCIe and NVL
    cards; the SXM ones are "H100 80GB HBM3", "H100 SXM5", "H200"); else the power
    limit decides (> 450 W: SXM); None when neither says."""
    n = name.upper()
    for token in ("NVL", "PCIE", "SXM"):
        if token in n:
            return {"PCIE": "PCIe"}.get(token, token)
    if "H100" in n and "HBM3" in n or n.endswith("H200"):
        return "SXM"
    if power_w is not None:
        return "SXM" if power_w > 450 else "PCIe"
    return None


def nvidia_smi() -> dict:
    """name, memory, driver and power limit from ``nvidia-smi``, where it answers."""
    fields = "name,memory.total,driver_version,power.limit"
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout
        name, mem, driver, power = [v.strip() for v in out.splitlines()[0].split(",")]
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return {}
    try:
        power_w = float(power.split()[0])
    except (ValueError, IndexError):
        power_w = None
    return {"smi_name": name, "smi_memory": mem, "driver": driver, "power_limit_w": power_w}


def device_info(cuda: bool) -> dict:
    """The device, the host and library versions."""
    import torchaudio

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "torchaudio": torchaudio.__version__, "cuda_runtime": torch.version.cuda,
            "cpu_count": os.cpu_count(), "host": platform.node()}
    try:
        import timm

        import augkit

        info.update(augkit=augkit.__version__, timm=timm.__version__)
    except ImportError as e:
        info["import_error"] = str(e)
    if not cuda:
        return {**info, "device": "cpu", "name": platform.processor() or platform.machine()}
    props = torch.cuda.get_device_properties(0)
    smi = nvidia_smi()
    name = torch.cuda.get_device_name(0)
    ff = form_factor(smi.get("smi_name", name), smi.get("power_limit_w"))
    key = next((k for k in SPEC_TBS if k.split()[0] in name
                and (len(k.split()) == 1 or k.split()[1] == ff)), None)
    return {**info, **smi, "device": "cuda", "name": name, "form_factor": ff,
            "spec_tbs": SPEC_TBS.get(key), "count": torch.cuda.device_count(),
            "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
            "memory_gib": round(props.total_memory / 2**30, 1)}


def junit_summary(path: Path) -> dict:
    """Outcome counts and the failing test ids with their first message line."""
    counts = dict.fromkeys(OUTCOMES, 0)
    failures = []
    if not path.exists():
        return {"counts": counts, "failures": failures, "junit": False}
    for case in ET.parse(path).iter("testcase"):
        test_id = "::".join(filter(None, (case.get("classname"), case.get("name"))))
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
        counts[outcome] += 1
    return {"counts": counts, "failures": failures, "junit": True}


def sync_check(box: Box, rec: dict, work: Path, cuda: bool) -> None:
    """``pytest -m cuda`` on the test files that mark tests ``cuda``, in a subprocess."""
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                   if "mark.cuda" in p.read_text())
    xml = work / "sync.xml"
    cmd = [sys.executable, "-m", "pytest", *files, "-m", "cuda", "-q", "-p", "no:cacheprovider",
           "-rfEs", f"--junitxml={xml}"]
    rec["files"], rec["cuda"] = files, cuda
    rec.update(run_budgeted(cmd, work / "sync.log", box.left(), env=child_env(), cwd=ROOT))
    rec.update(junit_summary(xml))
    if rec["timed_out"]:
        raise Cut(f"time box of {box.budget_s:g} s ran out (pytest interrupted)")
    if rec["rc"] != 0 or rec["counts"]["failed"] or rec["counts"]["errors"]:
        raise RuntimeError(f"cuda tests: rc {rec['rc']}, {rec['counts']['failed']} failed, "
                           f"{rec['counts']['errors']} errors")
    if cuda and not rec["counts"]["passed"]:
        raise RuntimeError("no cuda-marked test passed on a CUDA device")


class Run:
    """One gpu-check run: the summary, its files, the log and the section runner."""

    def __init__(self, out: Path, tiny: bool, args: argparse.Namespace) -> None:
        self.out, self.tiny, self.args = out, tiny, args
        self.work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
        self.log = (self.work / "gpu-check.log").open("w")
        self.start = time.monotonic()
        self.total_deadline = self.start + args.total
        self.summary = {"schema": gpu_report.SCHEMA, "ok": None,
                        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "sizes": "tiny" if tiny else "full",
                        "size_table": gpu_bench.sizes_dict(TINY if tiny else FULL),
                        "argv": sys.argv[1:], "sections": {}}

    def say(self, msg: str) -> None:
        line = f"[gpu-check {time.monotonic() - self.start:6.1f} s] {msg}"
        print(line, flush=True)
        self.log.write(line + "\n")
        self.log.flush()

    def save(self, final: bool = False) -> None:
        """Rewrite the JSON (and, at section ends, the markdown and the logs' tar)."""
        self.summary["seconds"] = round(time.monotonic() - self.start, 1)
        write_json(self.out / "gpu-check.json", self.summary)
        if final:
            md = self.out / "gpu-check.md"
            tmp = md.with_name(".gpu-check.md.tmp")
            tmp.write_text(gpu_report.render(self.summary) + "\n")
            tmp.replace(md)
            tar = self.out / "logs.tar.gz"
            tmp = tar.with_name(".logs.tar.gz.tmp")
            with tarfile.open(tmp, "w:gz") as t:
                t.add(self.work, arcname="logs",
                      filter=lambda i: None if "/banks" in i.name else i)
            tmp.replace(tar)

    def section(self, name: str, fn) -> None:
        budget = self.args.budgets[name]
        rec = {"status": "running", "budget_s": budget}
        self.summary["sections"][name] = rec
        if name not in self.args.sections:
            rec.update(status="skipped", reason="not selected (--sections)")
            return
        left = self.total_deadline - time.monotonic()
        if left < 1.0:
            rec.update(status="skipped", reason=f"the script's total box of {self.args.total:g} s "
                       "ran out before it")
            self.say(f"{name}: skipped (total time box)")
            return
        box = Box(min(budget, left), lambda: self.save())
        if box.budget_s < budget:
            rec["budget_s"] = round(box.budget_s, 1)
            rec["budget_note"] = f"shortened from {budget:g} s by the script's total box"
        self.say(f"{name}: start (box {box.budget_s:.0f} s)")
        t0 = time.monotonic()

        def backstop(signum, frame):  # a step that overruns its box: stop it here
            raise Cut(f"time box of {box.budget_s:g} s ran out (stopped {BACKSTOP_S:g} s late)")

        old = signal.signal(signal.SIGALRM, backstop)
        signal.setitimer(signal.ITIMER_REAL, box.budget_s + BACKSTOP_S)
        try:
            fn(box, rec)
            rec["status"] = "ok"
        except Cut as e:
            rec.update(status="cut", reason=str(e))
        except Exception as e:
            rec.update(status="error", reason=f"{type(e).__name__}: {e}"[:500])
            self.log.write(traceback.format_exc())
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
            rec["wall_s"] = round(time.monotonic() - t0, 1)
            if self.args.device.type == "cuda":
                torch.cuda.empty_cache()
        self.say(f"{name}: {rec['status']} in {rec['wall_s']} s"
                 + (f" ({rec['reason']})" if rec.get("reason") else ""))
        self.save(final=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(".gpu-check"))
    p.add_argument("--allow-cpu", action="store_true",
                   help="without CUDA, run every section at tiny sizes on the CPU")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--budget", action="append", default=[], metavar="SECTION=SECONDS",
                   help="override one section's time budget (repeatable)")
    p.add_argument("--total", type=float, default=None,
                   help="total time box of sections 1-5 in seconds (default: 300; 150 on CPU)")
    p.add_argument("--backbone", default=None,
                   help="timed ablation backbone (default: resnet18; cnn_small on CPU)")
    p.add_argument("--pack", type=int, default=None,
                   help="processes packed on the GPU (default: 4; 2 on CPU)")
    p.add_argument("--pack-backbone", default="cnn_small", help="backbone of the packed runs")
    a = p.parse_args(argv)
    a.sections = [s.strip() for s in a.sections.split(",") if s.strip()]
    unknown = set(a.sections) - set(SECTIONS)
    if unknown:
        p.error(f"--sections: unknown {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    cuda = torch.cuda.is_available()
    if not cuda and not a.allow_cpu:
        print("gpu-check: no CUDA device visible (torch.cuda.is_available() is False); "
              "--allow-cpu runs it on the CPU at tiny sizes")
        return 2
    tiny = not cuda
    kind = "tiny" if tiny else "full"
    a.budgets = dict(BUDGETS[kind])
    for item in a.budget:
        name, _, value = item.partition("=")
        if name not in SECTIONS:
            sys.exit(f"gpu-check: --budget {item!r}: unknown section {name!r}")
        try:
            a.budgets[name] = float(value)
        except ValueError:
            sys.exit(f"gpu-check: --budget {item!r}: seconds must be a number")
    a.total = TOTAL[kind] if a.total is None else a.total
    a.backbone = a.backbone or ("cnn_small" if tiny else "resnet18")
    a.pack = a.pack or (2 if tiny else 4)
    a.device = torch.device("cuda" if cuda else "cpu")
    sizes = TINY if tiny else FULL
    a.out.mkdir(parents=True, exist_ok=True)
    run = Run(a.out, tiny, a)
    s = run.summary
    s["device"] = device_info(cuda)
    s["budgets"], s["total_box_s"] = a.budgets, a.total
    run.say(f"device: {s['device']['name']} ({s['device']['device']}), "
            f"{s['device']['cpu_count']} CPU cores, sizes {kind}")
    run.save()
    try:
        run.section("matrix", lambda box, rec: gpu_bench.matrix(box, rec, a.device, sizes))
        run.section("peers", lambda box, rec: gpu_bench.peers(box, rec, a.device, sizes,
                                                              run.work))
        run.section("sync", lambda box, rec: sync_check(box, rec, run.work, cuda))
        run.section("compile", lambda box, rec: gpu_bench.compile_section(
            box, rec, a.device, sizes, run.work, run.work / "compile.log"))
        run.section("ablation", lambda box, rec: gpu_ablation.ablation(
            box, rec, a.device.type, tiny, run.work / "ablation", a.backbone, a.pack,
            a.pack_backbone))
        # the CPU case last: a GPU slot's time goes to the GPU first
        run.total_deadline = max(run.total_deadline, time.monotonic() + a.budgets["cpu"])
        run.section("cpu", lambda box, rec: gpu_bench.cpu_case(box, rec, sizes))
    finally:
        statuses = {k: v["status"] for k, v in s["sections"].items()}
        s["ok"] = not any(v in ("error", "running") for v in statuses.values())
        s["goals"] = gpu_report.goals(s)
        run.save(final=True)
        run.log.close()
        shutil.rmtree(run.work, ignore_errors=True)
    print(gpu_report.render(s))
    print(f"gpu-check: {'OK' if s['ok'] else 'FAILED'} in {s['seconds']} s; "
          f"files in {a.out}: {', '.join(sorted(p.name for p in a.out.iterdir()))}")
    return 0 if s["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
