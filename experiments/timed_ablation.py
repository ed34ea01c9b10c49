"""A timed GTZAN-shaped ablation: how fast the runner trains when the data lives on the device.

    python -m experiments.timed_ablation --device cuda --out gpu-check     # 1000 x 30 s, ResNet18
    python -m experiments.timed_ablation --device cpu --clips 50 --seconds 2 --epochs 1 \\
        --backbone cnn_small --crop-seconds 1 --out /tmp/t                 # a smoke test

Generates ``--clips`` clips of ``--seconds`` at ``--sample-rate`` (GTZAN's shape by
default: 1000 x 30 s at 22050 Hz, 10 classes; tones and noise, no files) directly
into a packed :class:`~experiments.data.audioset.AudioSet` on the device, then trains the
``augkit`` preset's recipe (log-mel, 10-s crops, its augmentation chain, ResNet18)
for ``--epochs`` on two arms (``baseline`` and ``all``), one seed, and writes
``timed_ablation.json``: data-generation time, per-arm train and evaluation time,
clips/s and peak device memory. Accuracy on this data means nothing; the figures
are speed.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from . import config as C
from .arms import build_arm
from .data.audioset import AudioSet
from .data.splits import make_splits
from .io import atomic_write_json
from .training.trainer import Recipe, train_run


def generated_set(clips: int, seconds: float, sample_rate: int, classes: int,
                  device: torch.device, seed: int = 0) -> AudioSet:
    """``clips`` int16 clips of a class-dependent tone in noise, packed on ``device``."""
    g = torch.Generator(device=device).manual_seed(seed)
    n = int(round(seconds * sample_rate))
    labels = torch.arange(clips, device=device) % classes
    t = torch.arange(n, device=device) / sample_rate
    freq = 110.0 * 2 ** (labels.float() / 2)  # (clips,)
    wave = 0.3 * torch.sin(2 * math.pi * freq[:, None] * t)
    wave += 0.05 * torch.randn(clips, n, device=device, generator=g)
    samples = (wave.clamp(-1, 1) * 32767).round().to(torch.int16).reshape(-1)
    lengths = torch.full((clips,), n, dtype=torch.int64, device=device)
    return AudioSet(samples, torch.arange(clips, device=device) * n, lengths, labels,
                    [f"c{i % classes}/clip{i:04d}.wav" for i in range(clips)],
                    [f"c{k}" for k in range(classes)], sample_rate, [])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.timed_ablation",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--clips", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--sample-rate", type=int, default=22050)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--crop-seconds", type=float, default=10.0)
    p.add_argument("--out", type=Path, default=Path("gpu-check"))
    a = p.parse_args(argv)
    if a.clips < 50:
        p.error("--clips must be at least 50 (10 classes, 5 each for a 60/20/20 split)")
    device = torch.device(a.device)
    overrides = {"protocol": "fixed", "epochs": a.epochs, "backbone": a.backbone,
                 "crop_seconds": a.crop_seconds,
                 "sample_rate": a.sample_rate, "device": a.device, "swanlab_mode": "disabled",
                 "split": "holdout", "warmup_epochs": min(1.0, a.epochs)}
    cfg = C.resolve("augkit", overrides=overrides)
    t0 = time.perf_counter()
    data = generated_set(a.clips, a.seconds, a.sample_rate, 10, device)
    splits = {k: v.to(device) for k, v in make_splits(data.to("cpu"), "holdout").items()}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "clips": a.clips, "seconds": a.seconds,
              "sample_rate": a.sample_rate, "epochs": a.epochs, "backbone": a.backbone,
              "crop_seconds": a.crop_seconds, "augmentations": cfg.ablation.augmentations,
              "data_s": round(time.perf_counter() - t0, 2),
              "split_sizes": {k: int(v.shape[0]) for k, v in splits.items()}, "arms": {}}
    recipe = Recipe.of(cfg)
    for name in ("baseline", "all"):
        arm = build_arm(name, cfg.frontend, cfg.ablation, len(data.classes))
        r = train_run(arm, recipe, 0, None, data, splits)
        report["arms"][name] = {"time_s": round(r.time_s, 2),
                                "train_clips_per_s": round(r.train_clips_per_s, 1),
                                "epoch_train_clips_per_s": [round(h.clips_per_s, 1)
                                                            for h in r.history],
                                "status": r.status}
    if device.type == "cuda":
        report["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    report["total_s"] = round(time.perf_counter() - t0, 2)
    atomic_write_json(a.out / "timed_ablation.json", report)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
