"""Ablate augmentations: every arm x seed (x fold), with resume, plots and SwanLab.

    python -m experiments.ablate                       # quick preset, embedded synthetic data
    python -m experiments.ablate --preset augkit --data /path/to/genres_original --device cuda
    python -m experiments.ablate --arms baseline,time_mask,all --seeds 0,1,2 --set lr=1e-3

Outputs go to ``--out`` (default ``runs/<preset>``): config.json, runs/<arm>/seed<k>.json,
results.csv, summary.md and PNG plots. Re-running with the same ``--out`` skips the
(arm, seed) pairs already done.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import config as C
from .arms import arm_augmentations, expand_arms
from .data import AudioSet
from .io import atomic_write_json
from .report import write_report
from .results import EpochLog, RunResult
from .tracking import Tracker
from .train import train_run


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m experiments.ablate", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="quick", choices=C.PRESETS,
                   help="base settings from experiments/configs/<preset>.json (default: quick)")
    p.add_argument("--config", help="a JSON file of overrides, applied after the preset")
    p.add_argument("--data", help="GTZAN genres_original (or genres/*.au), a folder-per-class "
                   "dataset, or a CSV manifest (path,label[,split]); default: embedded "
                   "synthetic set")
    p.add_argument("--out", help="output folder (default: runs/<preset>)")
    p.add_argument("--arms", help="comma list: baseline, <aug>, all, all-minus-<aug>, a+b, "
                   "alone, loo, default")
    p.add_argument("--seeds", help="comma list of seeds, e.g. 0,1,2")
    p.add_argument("--split", choices=("tutorial", "fault-filtered", "kfold", "manifest",
                                       "holdout"))
    p.add_argument("--folds", type=int, help="k for --split kfold")
    p.add_argument("--fold", help="fold index for --split kfold, or 'all'")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--backbone", help="a registered backbone, e.g. resnet18, resnext101_32x8d")
    p.add_argument("--pretrained", help="'true' (timm hub) or a local weights file")
    p.add_argument("--sample-rate", type=int)
    p.add_argument("--crop-seconds", type=float)
    p.add_argument("--device", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the model")
    p.add_argument("--swanlab-mode", choices=("cloud", "local", "offline", "disabled"),
                   help="cloud, local, offline or disabled (default: local; no account needed)")
    p.add_argument("--cache-dir", help="where decoded audio and the synthetic set are cached")
    p.add_argument("--noise-dir", help="a folder of noise recordings for the background_noise "
                   "arm (default: a generated bank)")
    p.add_argument("--ir-dir", help="a folder of room impulse responses for the reverb arm "
                   "(default: generated rooms)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, e.g. --set augment.time_mask_width=30")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def overrides_from(args: argparse.Namespace) -> dict:
    ov = {}
    for key in ("data", "out", "split", "folds", "fold", "epochs", "batch_size", "lr", "backbone",
                "sample_rate", "crop_seconds", "device", "compile", "swanlab_mode",
                "cache_dir", "noise_dir", "ir_dir", "arms", "seeds"):
        v = getattr(args, key)
        if v is not None:
            ov[key] = v
    if args.pretrained is not None:
        ov["pretrained"] = True if args.pretrained.lower() == "true" else args.pretrained
    if "seeds" in ov:
        try:
            ov["seeds"] = [int(s) for s in str(ov["seeds"]).split(",") if s.strip()]
        except ValueError:
            raise ValueError(f"--seeds must be a comma list of integers, got {args.seeds!r}"
                             ) from None
    if "arms" in ov:
        ov["arms"] = [a.strip() for a in ov["arms"].split(",") if a.strip()]
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        ov[k.strip()] = v
    return ov


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    import timm
    import torchaudio

    import augkit

    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchaudio": torchaudio.__version__, "timm": timm.__version__,
            "augkit": augkit.__version__, "platform": platform.platform()}


def prepare_data(cfg: C.Config, progress: bool):
    from .data import load_dataset
    from .synthetic import generate_synthetic_gtzan

    cache = Path(cfg.cache_dir)
    if cfg.data is None:
        syn = cfg.synthetic
        tag = hashlib.sha1(json.dumps(syn, sort_keys=True).encode()).hexdigest()[:10]
        root = generate_synthetic_gtzan(cache / f"synthetic-{tag}", progress=progress, **syn)
        path = Path(root)
    else:
        path = Path(cfg.data)
    return load_dataset(path, cfg.sample_rate, cache / "decoded", max_seconds=cfg.max_seconds,
                        progress=progress)


def run_file(out: Path, arm: str, seed: int, fold: int | None) -> Path:
    return out / "runs" / arm / (f"seed{seed}" + ("" if fold is None else f"-fold{fold}") +
                                 ".json")


def check_resume(out: Path, cfg: C.Config) -> None:
    """Refuse to mix results of different settings in one --out folder."""
    path = out / "config.json"
    if not path.exists():
        return
    old = json.loads(path.read_text()).get("identity")
    new = json.loads(json.dumps(C.identity(cfg), default=str))
    if old is not None and old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise SystemExit(
            f"error: {out} holds results of different settings (differs in: {', '.join(diff)}). "
            "Use a new --out, or delete the folder to start over.")


@dataclass
class Plan:
    """What to run: the (arm, seed, fold) units, their splits, and where results go."""

    cfg: C.Config
    out: Path
    arms: list[str]
    folds: list[int | None]
    data: AudioSet
    splits: dict[int | None, dict[str, torch.Tensor]]

    @property
    def units(self) -> list[tuple[str, int, int | None]]:
        return [(a, s, f) for a in self.arms for s in self.cfg.seeds for f in self.folds]

    def done(self) -> list[RunResult]:
        return [RunResult.from_dict(json.loads(p.read_text())) for p in
                (run_file(self.out, *u) for u in self.units) if p.exists()]

    def todo(self) -> list[tuple[str, int, int | None]]:
        return [u for u in self.units if not run_file(self.out, *u).exists()]

    @property
    def split_sizes(self) -> dict[str, int]:
        return {k: int(v.shape[0]) for k, v in self.splits[self.folds[0]].items()}

    @property
    def context(self) -> str:
        c = self.cfg
        return (f"Preset `{c.preset}`, data: {c.data or 'embedded synthetic set'}, split "
                f"`{c.split}` {self.split_sizes}, backbone `{c.backbone}`, {c.epochs} epochs, "
                f"device {self.data.labels.device}.")


def plan(cfg: C.Config, progress: bool) -> Plan:
    """Check arms and device, load the data onto the device, make the splits."""
    from .splits import make_splits

    arms = expand_arms(cfg.arms, cfg.augmentations)
    device = pick_device(cfg.device)
    ds = prepare_data(cfg, progress)
    if ds.sample_rate != cfg.sample_rate:
        raise ValueError(f"dataset decoded at {ds.sample_rate} Hz, expected {cfg.sample_rate}")
    folds = ((list(range(cfg.folds)) if cfg.fold == "all" else [int(cfg.fold)])
             if cfg.split == "kfold" else [None])
    splits = {f: {k: v.to(device) for k, v in
                  make_splits(ds, cfg.split, folds=cfg.folds, fold=f or 0).items()}
              for f in folds}
    return Plan(cfg, Path(cfg.out), arms, folds, ds.to(device), splits)


def write_config(p: Plan, argv: list[str] | None) -> None:
    device = p.data.labels.device
    atomic_write_json(p.out / "config.json", {
        "config": C.to_dict(p.cfg), "identity": C.identity(p.cfg), "versions": versions(),
        "git_commit": git_commit(), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
        else f"{platform.machine()} CPU ({torch.get_num_threads()} threads)",
        "command": " ".join([Path(sys.executable).name, "-m", "experiments.ablate",
                             *(sys.argv[1:] if argv is None else argv)]),
        "dataset": {"path": p.cfg.data or "embedded synthetic", "clips": len(p.data),
                    "classes": p.data.classes, "skipped": p.data.skipped,
                    "split_sizes": p.split_sizes},
    })


def run_unit(p: Plan, arm: str, seed: int, fold: int | None, progress: bool) -> RunResult:
    """Train one (arm, seed, fold) with SwanLab logging and write its result atomically."""
    cfg = p.cfg
    augs = arm_augmentations(arm, cfg.augmentations)
    name = f"{arm}-seed{seed}" + ("" if fold is None else f"-fold{fold}")
    tracker = Tracker(cfg.swanlab_mode, cfg.swanlab_project, p.out / "swanlog", name, arm,
                      [arm, cfg.preset, f"seed{seed}"],
                      {**C.to_dict(cfg), "arm": arm, "seed": seed, "fold": fold,
                       "arm_augmentations": augs})
    bar = tqdm(total=cfg.epochs, desc="  epochs", unit="ep", leave=False, disable=not progress,
               position=1)

    def on_epoch(log: EpochLog) -> None:
        tracker.log(log.scalars(), step=log.epoch)
        bar.set_postfix(loss=f"{log.train_loss:.3f}", val=f"{log.val_acc:.3f}")
        bar.update(1)

    def on_examples(waves, feats) -> None:
        tracker.log_examples(waves[: cfg.log_examples], feats[: cfg.log_examples],
                             p.data.sample_rate)

    t0 = time.time()
    try:
        r = train_run(cfg, arm, augs, seed, fold, p.data, p.splits[fold], on_epoch, on_examples)
    finally:
        bar.close()
    split = "test" if r.test is not None else "val"
    tracker.log_confusion(f"{split}/confusion", r.primary.confusion, p.data.classes,
                          f"{name}: {split}", step=cfg.epochs)
    tracker.finish()
    r.wall_s = time.time() - t0
    atomic_write_json(run_file(p.out, arm, seed, fold), r.to_dict())
    return r


def main(argv=None) -> int:
    args = parse_args(argv)
    progress = not args.no_progress
    try:
        cfg = C.resolve(args.preset, args.config, overrides_from(args))
        cfg.out = str(cfg.out or f"runs/{cfg.preset}")
        check_resume(Path(cfg.out), cfg)
        p = plan(cfg, progress)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_config(p, argv)
    results, todo = p.done(), p.todo()
    print(f"augkit ablation: {len(p.arms)} arms x {len(cfg.seeds)} seeds"
          + (f" x {len(p.folds)} folds" if p.folds != [None] else "")
          + f" on {p.data.labels.device}; {len(p.data)} clips, {len(p.data.classes)} classes, "
          f"split {cfg.split} {p.split_sizes}; {len(results)} done, {len(todo)} to run "
          f"-> {p.out}", flush=True)
    title = f"augkit ablation: {p.out.name}"
    bar = tqdm(todo, desc="runs", unit="run", disable=not progress, position=0)
    for arm, seed, fold in bar:
        bar.set_postfix_str(f"{arm} seed {seed}" + ("" if fold is None else f" fold {fold}"))
        results.append(run_unit(p, arm, seed, fold, progress))
        write_report(p.out, results, p.arms, p.data.classes, title, p.context, plots=False)
    bar.close()
    if not results:
        print("nothing to report", file=sys.stderr)
        return 1
    write_report(p.out, results, p.arms, p.data.classes, title, p.context)
    print()
    print((p.out / "summary.md").read_text())
    print(f"{len(results)} runs; results: {p.out / 'results.csv'}, {p.out / 'summary.md'}, "
          f"plots: {p.out / 'curves.png'}, {p.out / 'deltas.png'}, {p.out / 'confusion.png'}")
    if cfg.swanlab_mode != "disabled":
        print(f"SwanLab ({cfg.swanlab_mode}) runs in {p.out / 'swanlog'}"
              + (f"; dashboard: swanlab watch {p.out / 'swanlog'}"
                 if cfg.swanlab_mode == "local" else ""))
    return 0


if __name__ == "__main__":
    warnings.filterwarnings("ignore", message=".*TorchCodec.*")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
