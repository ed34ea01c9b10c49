"""Section (5) of ``make gpu-check``: a timed ablation, one process and several packed.

Runs ``python -m experiments.timed_ablation`` (the runner's public entry point: 1000
generated 30-s clips at 22.05 kHz held on the device, the ``augkit`` preset's chain,
ResNet18, two arms ``baseline`` and ``all``, one seed) as plain subprocesses:

1. ``sequential``: one process, the sub-grid 2 arms × 1 seed × 3 epochs; its
   figures extrapolated (and said to be) to the preset's grid of 6 arms (``baseline``
   and one per augmentation) × 3 seeds × 30 epochs;
2. ``packing``: the same sub-grid in ``--pack`` processes at once on the one GPU
   (Ray is not on the GPU image), with ``--pack-backbone`` (default ``cnn_small``:
   the runs packing is for); when it differs from the sequential run's backbone,
   one process of it runs alone first, as the reference. Speed-up: ``pack`` times
   the work of one process over the packed wall time.

Peak memory per run: each process's ``torch.cuda.max_memory_allocated`` (from its
JSON) and, where ``nvidia-smi`` answers, the largest memory it saw per process
(context included), sampled every second.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from .gpu_bench import ROOT, Box, Cut, child_env

#: The preset's grid that the sub-grid is extrapolated to.
GRID = {"arms": 6, "seeds": 3, "epochs": 30}
FULL_ARGS: list[str] = []  # timed_ablation's defaults: 1000 x 30 s at 22050 Hz, resnet18, 3 epochs
TINY_ARGS = ["--clips", "50", "--seconds", "1.5", "--sample-rate", "8000", "--epochs", "1",
             "--crop-seconds", "1"]


class MemoryProbe:
    """Samples ``nvidia-smi``'s per-process used memory (MiB) every second, in a thread."""

    def __init__(self) -> None:
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = None
        if shutil.which("nvidia-smi"):
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                                      "--format=csv,noheader,nounits"], capture_output=True,
                                     text=True, timeout=5).stdout
            except (OSError, subprocess.SubprocessError):
                return
            for line in out.strip().splitlines():
                try:
                    pid, mib = (int(v) for v in line.split(","))
                except ValueError:
                    continue
                self.peak[pid] = max(self.peak.get(pid, 0), mib)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=6)


def _launch(args: list[str], out: Path, log: Path) -> tuple[subprocess.Popen, object]:
    out.mkdir(parents=True, exist_ok=True)
    f = log.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "experiments.timed_ablation", *args,
                             "--out", str(out)], stdout=f, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=ROOT, env=child_env())
    return proc, f


def _result(out: Path) -> dict | None:
    try:
        return json.loads((out / "timed_ablation.json").read_text())
    except (OSError, ValueError):
        return None


def _summary(r: dict) -> dict:
    """The figures of one process's ``timed_ablation.json`` that the report uses."""
    keep = ("device", "clips", "seconds", "sample_rate", "epochs", "backbone", "crop_seconds",
            "data_s", "total_s", "peak_memory_gib", "split_sizes", "augmentations")
    return {**{k: r[k] for k in keep if k in r},
            "arms": {a: {k: v.get(k) for k in ("time_s", "train_clips_per_s",
                                               "epoch_train_clips_per_s", "status")}
                     for a, v in r.get("arms", {}).items()}}


def extrapolate(r: dict) -> dict:
    """The preset's grid (:data:`GRID`) from one process's sub-grid, linearly: each arm's
    time per epoch (training and evaluation, its first epoch's warm-up included) times
    30 epochs; ``baseline`` once and ``all`` (the chain's cost) for the 5 augmented arms;
    times 3 seeds; plus the data generation once."""
    arms, epochs = r["arms"], r["epochs"]
    per_epoch = {a: v["time_s"] / epochs for a, v in arms.items()}
    aug = per_epoch.get("all", max(per_epoch.values()))
    run_s = {"baseline": per_epoch.get("baseline", aug) * GRID["epochs"],
             "augmented": aug * GRID["epochs"]}
    total = GRID["seeds"] * (run_s["baseline"] + (GRID["arms"] - 1) * run_s["augmented"])
    total += r.get("data_s", 0.0)
    return {"extrapolated": True, "grid": dict(GRID), "from_epochs": epochs,
            "per_epoch_s": {a: round(v, 3) for a, v in per_epoch.items()},
            "run_s": {k: round(v, 1) for k, v in run_s.items()},
            "total_s": round(total, 1), "total_h": round(total / 3600, 3)}


def _group(args: list[str], n: int, work: Path, name: str, box: Box) -> dict:
    """``n`` processes of ``timed_ablation args`` at once; their wall time and results."""
    probe = MemoryProbe()
    procs = []
    start = time.monotonic()
    try:
        for i in range(n):
            procs.append(_launch(args, work / f"{name}{i}", work / f"{name}{i}.log"))
        timed_out = False
        for proc, _ in procs:
            try:
                proc.wait(timeout=max(box.left(), 0.1))
            except subprocess.TimeoutExpired:
                timed_out = True
                break
    finally:
        for proc, f in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            f.close()
        probe.stop()
    wall = time.monotonic() - start
    runs = []
    for i, (proc, _) in enumerate(procs):
        r = _result(work / f"{name}{i}")
        runs.append({"rc": proc.returncode, "pid": proc.pid,
                     "smi_peak_mib": probe.peak.get(proc.pid),
                     **({"result": _summary(r)} if r else {})})
    return {"processes": n, "wall_s": round(wall, 1), "timed_out": timed_out, "runs": runs}


def ablation(box: Box, rec: dict, device: str, tiny: bool, work: Path, backbone: str,
             pack: int, pack_backbone: str) -> None:
    """Fill ``rec`` with ``sequential`` (+ ``extrapolated``) and ``packing``; see the module."""
    base = [*(TINY_ARGS if tiny else FULL_ARGS), "--device", device]
    rec["args"] = base
    rec["grid"] = {"sub_grid": {"arms": 2, "seeds": 1,
                                "epochs": int(base[base.index("--epochs") + 1])
                                if "--epochs" in base else 3}, "extrapolated_to": GRID}
    work.mkdir(parents=True, exist_ok=True)

    def phase(key: str, bb: str, n: int) -> dict:
        box.check()
        res = _group([*base, "--backbone", bb], n, work, key, box)
        res["backbone"] = bb
        rec[key] = res
        box.save()
        if res["timed_out"]:
            raise Cut(f"time box of {box.budget_s:g} s ran out during {key}")
        bad = [r for r in res["runs"] if r["rc"] != 0 or "result" not in r]
        if bad:
            raise RuntimeError(f"{key}: {len(bad)} of {n} timed_ablation runs failed "
                               f"(rc {[r['rc'] for r in bad]}); see logs.tar.gz ablation/")
        return res

    seq = phase("sequential", backbone, 1)
    rec["extrapolated"] = extrapolate(seq["runs"][0]["result"])
    box.save()
    ref = seq if pack_backbone == backbone else phase("pack_reference", pack_backbone, 1)
    packed = phase("packing", pack_backbone, pack)
    one = ref["runs"][0]["result"]["total_s"]
    rec["packing_speedup"] = {
        "by_wall": round(pack * ref["wall_s"] / packed["wall_s"], 2),
        "by_process_total": round(pack * one / max(r["result"]["total_s"]
                                                   for r in packed["runs"]), 2),
        "note": "by_wall: process start-up included on both sides; by_process_total: each "
                "process's own data+training time (timed_ablation's total_s), the packed "
                "ones overlapping",
    }

