"""Ablate augmentations: every arm x seed (x fold), with resume, plots and SwanLab.

    python -m experiments.ablate                       # quick preset, embedded synthetic data
    python -m experiments.ablate --preset augkit --data /path/to/genres_original --device cuda
    python -m experiments.ablate --arms baseline,time_mask,all --seeds 0,1,2 --set lr=1e-3
    python -m experiments.ablate --arms loo --seeds 0,1,2,3,4 --workers 8 --gpus-per-run 0.25
    torchrun --nproc-per-node 4 -m experiments.ablate --arms all --seeds 0 --device cuda

Outputs go to ``--out`` (default ``runs/<preset>``): config.json, dataset.json,
runs/<arm>/seed<k>.json, results.csv, summary.md and PNG plots. Re-running with the
same ``--out`` skips the (arm, seed) pairs already done; a folder whose finished runs
used other settings or other data is refused, never mixed. Everything is checked
before any audio is decoded and before anything is written into ``--out``; a bad
input is one line on stderr and exit status 2. Ctrl-C stops with one line and
exit status 130; runs whose loss diverged are recorded as failed (exit status 1).
``--workers``/``--ray-address`` run the pairs on Ray, torchrun runs each pair
data-parallel (see experiments/distributed.py and the README's "Scale out").
"""

from __future__ import annotations

if __name__ == "__main__":  # Ctrl-C while the imports below load: one line, no traceback
    import signal as _signal

    def _interrupted_while_starting(signum, frame):
        import os as _os
        import sys as _sys

        print("interrupted while starting; nothing was run", file=_sys.stderr, flush=True)
        _os._exit(130)

    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, _interrupted_while_starting)

import argparse
import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import config as C
from . import distributed as D
from .arms import (
    arm_augmentations,
    arm_normalize,
    cancelled_arms,
    config_chain,
    context_for,
    expand_arms,
    unnormalized_features,
)
from .data import AudioSet, Scan
from .distributed import unit_label
from .io import atomic_write_json, first_line
from .report import write_report
from .results import EpochLog, RunResult
from .splits import SPLIT_KINDS
from .tracking import Tracker
from .train import train_run


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (no usage block), exit status 2."""

    def error(self, message: str):
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def parse_args(argv=None) -> argparse.Namespace:
    p = _Parser(
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
    p.add_argument("--split", choices=SPLIT_KINDS,
                   help="auto: the data's split column when it has one (a manifest's, the "
                        "synthetic set's), else holdout")
    p.add_argument("--folds", type=int, help="k for --split kfold")
    p.add_argument("--fold", help="fold index for --split kfold, or 'all'")
    p.add_argument("--normalize", help="level normalisation of every arm's input (the "
                   "baseline's too): none, max, standardize, freq or lufs")
    p.add_argument("--protocol", choices=("converge", "fixed"),
                   help="converge: each arm trains until validation stops improving, within "
                        "--max-epochs (default); fixed: --epochs for every arm")
    p.add_argument("--epochs", type=int, help="a fixed budget of N epochs for every arm "
                   "(implies --protocol fixed)")
    p.add_argument("--max-epochs", type=int, help="converge: the cap on epochs, final lr "
                   "decay included (implies --protocol converge)")
    p.add_argument("--patience", type=int, help="converge: epochs without a rise of the "
                   "3-epoch mean validation accuracy before the lr decays")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--backbone", help="a registered backbone, e.g. resnet18, resnext101_32x8d")
    p.add_argument("--pretrained", help="true (timm's hub), false, or a local weights file "
                   "(.safetensors, .pth)")
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
    p.add_argument("--allow-missing-classes", action="store_true", default=None,
                   help="run even when a class has no clip in train or in an evaluated split "
                   "(warned; otherwise an error)")
    p.add_argument("--retry-failed", action="store_true",
                   help="run again the pairs whose training diverged (status failed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    g = p.add_argument_group("scale out (README: Scale out)")
    g.add_argument("--workers", type=int, help="run N pairs at a time on a local Ray runtime "
                   "(pip install augkit[ray]); default: one after another, no Ray")
    g.add_argument("--ray-address", help="join an existing Ray cluster: auto or HOST:PORT")
    g.add_argument("--gpus-per-run", type=float, help="GPUs Ray reserves per pair (0.25 packs "
                   "four per GPU; default 1 on CUDA, 0 on the CPU)")
    g.add_argument("--cpus-per-run", type=int, help="torch threads per pair (and CPUs Ray "
                   "reserves for it); default: torch's own count, 1 on Ray")
    g.add_argument("--max-retries", type=int, help="times Ray runs a pair again when its "
                   "worker dies (default 3)")
    return p.parse_args(argv)


def overrides_from(args: argparse.Namespace) -> dict:
    ov = {}
    for key in ("data", "out", "split", "folds", "fold", "normalize", "protocol", "epochs",
                "max_epochs", "patience", "batch_size", "lr", "backbone",
                "sample_rate", "crop_seconds", "device", "compile", "swanlab_mode",
                "cache_dir", "noise_dir", "ir_dir", "arms", "seeds", "allow_missing_classes",
                "workers", "ray_address", "gpus_per_run", "cpus_per_run", "max_retries"):
        v = getattr(args, key)
        if v is not None:
            ov[key] = v
    if args.protocol is None:  # --epochs N means a fixed budget, --max-epochs a cap
        if args.epochs is not None and args.max_epochs is not None:
            raise ValueError("--epochs (a fixed budget) and --max-epochs (the cap of the "
                             "converge protocol) do not combine; give one, or --protocol")
        if args.epochs is not None:
            ov["protocol"] = "fixed"
        elif args.max_epochs is not None:
            ov["protocol"] = "converge"
    if args.pretrained is not None:
        ov["pretrained"] = args.pretrained  # true, false or a path: see config._pretrained
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


def data_path(cfg: C.Config, progress: bool) -> Path:
    """The dataset to load: ``--data``, or the embedded synthetic set (generated once).

    For the synthetic set with ``split`` ``manifest`` or ``auto`` (the quick preset)
    this is its manifest, whose ``split`` column says which recording conditions each clip has.
    """
    from .synthetic import MANIFEST, generate_synthetic_gtzan

    if cfg.data is not None:
        return Path(cfg.data).expanduser()
    syn = cfg.synthetic
    tag = hashlib.sha1(json.dumps(syn, sort_keys=True).encode()).hexdigest()[:10]
    try:
        folder = Path(generate_synthetic_gtzan(Path(cfg.cache_dir) / f"synthetic-{tag}",
                                               progress=progress, **syn))
    except TypeError as e:
        raise ValueError(f"synthetic: {e}") from None
    return folder.parent / MANIFEST if cfg.split in ("manifest", "auto") else folder


def run_file(out: Path, arm: str, seed: int, fold: int | None) -> Path:
    return out / "runs" / arm / (f"seed{seed}" + ("" if fold is None else f"-fold{fold}") +
                                 ".json")


# ---------------------------------------------------------------------------
# Checks made before any work


def check_paths(cfg: C.Config) -> None:
    """--out and --cache-dir must be (or become) folders we can write."""
    for flag, folder in (("--out", Path(cfg.out)), ("--cache-dir", Path(cfg.cache_dir)),
                         ("--cache-dir", Path(cfg.cache_dir) / "decoded")):
        folder = folder.expanduser()
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"{flag} {folder} is a file; give a folder")
        existing = next((p for p in (folder, *folder.absolute().parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise ValueError(f"{flag} {folder}: {existing} is a file, not a folder")
        if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
            raise ValueError(f"{flag} {folder}: cannot write into {existing} (permission "
                             "denied)")


def finished_files(out: Path) -> list[Path]:
    return sorted((out / "runs").glob("*/*.json"))


def _read_config(out: Path) -> dict | None:
    path = out / "config.json"
    if not path.exists():
        return None
    try:
        d = json.loads(path.read_text())
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def _new_folder_hint(out: Path) -> str:
    return (f"Use a new --out (e.g. --out {out}-2) to start a new folder, or delete {out} "
            "to start over.")


def check_settings(out: Path, cfg: C.Config) -> None:
    """Refuse to mix results of different settings in one --out folder.

    Only finished runs are protected: a folder whose earlier command failed before
    finishing a run (a typo, a bad path) accepts the corrected command.
    """
    if not finished_files(out):
        return
    old = _read_config(out)
    if not old or "identity" not in old:
        raise ValueError(f"{out} holds finished runs but no readable config.json to check "
                         f"them against. {_new_folder_hint(out)}")
    new = json.loads(json.dumps(C.identity(cfg), default=str))
    if old["identity"] != new:
        diff = sorted(k for k in set(old["identity"]) | set(new)
                      if old["identity"].get(k) != new.get(k))
        raise ValueError(f"{out} holds results of different settings (differs in: "
                         f"{', '.join(diff)}). {_new_folder_hint(out)}")


def _named(items: list[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return shown + (f", ... and {len(items) - n} more" if len(items) > n else "")


def describe_data_change(old: dict[str, list], new: dict[str, list]) -> str:
    """What differs between two fingerprint records ``{clip id: [class, digest, split]}``."""
    parts = []
    old_classes = {v[0] for v in old.values()}
    new_classes = {v[0] for v in new.values()}
    for what, items in (("added", sorted(new_classes - old_classes)),
                        ("removed", sorted(old_classes - new_classes))):
        if items:
            parts.append(f"class{'es' if len(items) > 1 else ''} {what}: {', '.join(items)}")
    added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    common = sorted(set(old) & set(new))
    changed = [i for i in common if old[i][:2] != new[i][:2]]
    moved = [i for i in common if old[i][:2] == new[i][:2] and old[i][2:] != new[i][2:]]
    for what, items in (("added", added), ("removed", removed), ("changed", changed),
                        ("moved to another split", moved)):
        if items:
            parts.append(f"{len(items)} clip{'s' if len(items) > 1 else ''} {what} "
                         f"({_named(items)})")
    return "; ".join(parts) or "the clip list differs"


def fingerprint(ds: AudioSet, assignment: list[str]) -> dict[str, list]:
    """``{clip id: [class, content digest, split]}``: what the resume check compares."""
    labels = ds.labels.tolist()
    digests = ds.digests or [""] * len(ds)
    return {i: [ds.classes[y], d, a] for i, y, d, a in zip(ds.ids, labels, digests, assignment,
                                                          strict=True)}


def fingerprint_hash(records: dict[str, list]) -> str:
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()


def check_data(out: Path, records: dict[str, list]) -> None:
    """Refuse a folder whose finished runs were trained on other data (or other splits)."""
    if not finished_files(out):
        return
    old = _read_config(out) or {}
    new_hash = fingerprint_hash(records)
    old_hash = old.get("data_fingerprint")
    if old_hash == new_hash:
        return
    if old_hash is None:
        raise ValueError(f"{out} holds finished runs written without a dataset fingerprint "
                         "(an older augkit), so they cannot be checked against this data. "
                         f"{_new_folder_hint(out)}")
    try:
        old_records = json.loads((out / "dataset.json").read_text())["clips"]
        change = describe_data_change(old_records, records)
    except (OSError, ValueError, KeyError, TypeError):
        change = "the clip list differs"
    raise ValueError(f"{out} holds results of a different dataset ({change}). "
                     f"{_new_folder_hint(out)}")


def check_model_and_chain(cfg: C.Config, arms: list[str], num_classes: int) -> None:
    """Build every arm's chain and the model, and push one batch through, on the CPU."""
    from .train import build_model

    names = sorted({a for arm in arms for a in arm_augmentations(arm, cfg.augmentations)})
    ctx = context_for(cfg, cfg.sample_rate, num_classes)
    crop = int(round(cfg.crop_seconds * cfg.sample_rate))
    x = None
    # The run's normalisation first: its chain's output is what the model is checked on.
    for mode in dict.fromkeys([cfg.normalize, *(arm_normalize(a, cfg.normalize) for a in arms)]):
        chain = config_chain(cfg, names, ctx, mode)
        g = torch.Generator().manual_seed(0)
        wave = 0.1 * torch.randn(2, 1, crop, generator=g)
        try:
            if mode == "freq":
                chain["normalize"].fit(unnormalized_features(chain, wave))
            out, _ = chain(wave, target=torch.tensor([0, num_classes - 1]), generator=g)
        except RuntimeError as e:
            raise ValueError(f"the augmentation chain {chain.names} (normalize {mode!r}) fails "
                             f"on a {cfg.crop_seconds:g} s crop: {first_line(e)}") from None
        x = out if x is None else x
    try:  # pretrained weights load here
        model = build_model(cfg, num_classes, torch.device("cpu"))
    except (TypeError, RuntimeError) as e:
        raise ValueError(f"backbone {cfg.backbone!r} (backbone_kwargs "
                         f"{cfg.backbone_kwargs}, pretrained {cfg.pretrained!r}): "
                         f"{first_line(e)}") from None
    model.eval()
    try:
        with torch.no_grad():
            model(x.contiguous(memory_format=torch.channels_last))
    except RuntimeError as e:
        raise ValueError(f"backbone {cfg.backbone!r} cannot take the model input of shape "
                         f"{tuple(x.shape)} (n_mels={cfg.n_mels}, crop_seconds="
                         f"{cfg.crop_seconds:g}): {first_line(e)}") from None


def _scan_set(scan: Scan) -> AudioSet:
    """An AudioSet without audio, from a scan: to check the splits before decoding."""
    classes = scan.classes
    n = len(scan.ids)
    return AudioSet(torch.zeros(n, dtype=torch.int16), torch.arange(n),
                    torch.ones(n, dtype=torch.int64),
                    torch.tensor([classes.index(c) for c in scan.labels], dtype=torch.int64),
                    list(scan.ids), classes, 1, [], scan.splits)


def fold_list(cfg: C.Config) -> list[int | None]:
    if cfg.split != "kfold":
        return [None]
    return list(range(cfg.folds)) if cfg.fold == "all" else [int(cfg.fold)]


def make_all_splits(cfg: C.Config, ds: AudioSet, folds: list[int | None]
                    ) -> tuple[dict[int | None, dict[str, torch.Tensor]], list[str]]:
    """The splits of each fold, and each clip's assignment (its split; for k-fold, its
    validation fold among all ``cfg.folds``) for the fingerprint."""
    from .splits import make_splits

    def one(f):
        return make_splits(ds, cfg.split, folds=cfg.folds, fold=f or 0,
                           allow_missing_classes=cfg.allow_missing_classes)

    splits = {f: one(f) for f in folds}
    assignment = [""] * len(ds)
    if cfg.split == "kfold":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for f in range(cfg.folds):
                for i in (splits[f] if f in splits else one(f))["val"].tolist():
                    assignment[i] = f"fold{f}"
    else:
        for name, idx in splits[folds[0]].items():
            for i in idx.tolist():
                assignment[i] = name
    return splits, assignment


@dataclass
class Plan:
    """What to run: the (arm, seed, fold) units, their splits, and where results go."""

    cfg: C.Config
    out: Path
    arms: list[str]
    folds: list[int | None]
    data: AudioSet
    splits: dict[int | None, dict[str, torch.Tensor]]
    records: dict[str, list] = field(default_factory=dict)
    retry_failed: bool = False
    #: Where the units train when that is not where ``data`` is (on Ray: data on the CPU).
    unit_device: torch.device | None = None
    #: Arms the run's normalisation undoes exactly (:func:`experiments.arms.cancelled_arms`).
    cancelled: list[str] = field(default_factory=list)

    @property
    def device(self) -> torch.device:
        return self.unit_device or self.data.labels.device

    @property
    def units(self) -> list[tuple[str, int, int | None]]:
        return [(a, s, f) for a in self.arms for s in self.cfg.seeds for f in self.folds]

    def finished(self) -> dict[tuple[str, int, int | None], RunResult]:
        """Every finished run in the folder (they all match the identity: checked)."""
        return read_finished(self.out)

    def todo(self, finished: dict) -> list[tuple[str, int, int | None]]:
        return [u for u in self.units if u not in finished
                or (self.retry_failed and not finished[u].ok)]

    def arm_order(self, finished: dict) -> list[str]:
        extra = sorted({u[0] for u in finished} - set(self.arms))
        return [*self.arms, *extra]

    @property
    def split_sizes(self) -> dict[str, int]:
        return {k: int(v.shape[0]) for k, v in self.splits[self.folds[0]].items()}

    @property
    def split_name(self) -> str:
        """The split kind, with what ``auto`` became: ``"auto (manifest)"``."""
        from .splits import resolve_kind

        kind = resolve_kind(self.data, self.cfg.split)
        return self.cfg.split if kind == self.cfg.split else f"{self.cfg.split} ({kind})"

    @property
    def context(self) -> str:
        c = self.cfg
        budget = (f"{c.epochs} epochs (fixed)" if c.protocol == "fixed" else
                  f"converge protocol (patience {c.patience}, cap {c.max_epochs} epochs)")
        return (f"Preset `{c.preset}`, data: {c.data or 'embedded synthetic set'}, split "
                f"`{self.split_name}` {self.split_sizes}, backbone `{c.backbone}`, "
                f"normalize `{c.normalize}`, {budget}, device {self.device}.")


def read_finished(out: Path) -> dict[tuple[str, int, int | None], RunResult]:
    done = {}
    for path in finished_files(out):
        try:
            r = RunResult.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, KeyError) as e:
            warnings.warn(f"ignoring unreadable run file {path} ({type(e).__name__}: {e}); "
                          "its pair will be run again if asked for", stacklevel=2)
            continue
        done[(r.arm, r.seed, r.fold)] = r
    return done


def plan(cfg: C.Config, progress: bool, retry_failed: bool = False,
         device: torch.device | None = None) -> Plan:
    """Check everything, then load the data onto the device and make the splits.

    Nothing is decoded before the settings, paths, tracker, model, chains and
    splits (on the scanned file list) are checked; nothing is written into --out.
    ``device``: where to load the data (default: ``cfg.device``).
    """
    from .data import load_dataset, scan_clips
    from .tracking import check_mode

    out = Path(cfg.out)
    arms = expand_arms(cfg.arms, cfg.augmentations)
    device = device or pick_device(cfg.device)
    check_paths(cfg)
    check_mode(cfg.swanlab_mode)
    check_settings(out, cfg)
    folds = fold_list(cfg)
    path = data_path(cfg, progress)
    scan = scan_clips(path)
    if len(scan.classes) < 2:
        raise ValueError(f"a classifier needs at least 2 classes; {scan.source} has "
                         f"{len(scan.classes)}: {', '.join(repr(c) for c in scan.classes)}")
    with warnings.catch_warnings():  # the real splits warn again after decoding
        warnings.simplefilter("ignore")
        make_all_splits(cfg, _scan_set(scan), folds)
    check_model_and_chain(cfg, arms, len(scan.classes))
    ds = load_dataset(path, cfg.sample_rate, Path(cfg.cache_dir) / "decoded",
                      max_seconds=cfg.max_seconds, progress=progress)
    if ds.sample_rate != cfg.sample_rate:
        raise ValueError(f"dataset decoded at {ds.sample_rate} Hz, expected {cfg.sample_rate}")
    splits, assignment = make_all_splits(cfg, ds, folds)
    records = fingerprint(ds, assignment)
    check_data(out, records)
    splits = {f: {k: v.to(device) for k, v in s.items()} for f, s in splits.items()}
    return Plan(cfg, out, arms, folds, ds.to(device), splits, records, retry_failed,
                cancelled=cancelled_arms(cfg, arms, len(scan.classes)))


def write_config(p: Plan, argv: list[str] | None) -> None:
    device = p.device
    atomic_write_json(p.out / "dataset.json", {"clips": p.records})
    atomic_write_json(p.out / "config.json", {
        "config": C.to_dict(p.cfg), "identity": C.identity(p.cfg),
        "data_fingerprint": fingerprint_hash(p.records), "versions": versions(),
        "git_commit": git_commit(), "device": str(device),
        "normalize": p.cfg.normalize, "protocol": p.cfg.protocol,
        "cancelled_by_normalization": p.cancelled,
        "device_name": (torch.cuda.get_device_name(device) if torch.cuda.is_available()
                        else "CUDA devices of the Ray cluster") if device.type == "cuda"
        else f"{platform.machine()} CPU ({torch.get_num_threads()} threads)",
        "command": " ".join([Path(sys.executable).name, "-m", "experiments.ablate",
                             *(sys.argv[1:] if argv is None else argv)]),
        "dataset": {"path": p.cfg.data or "embedded synthetic", "clips": len(p.data),
                    "classes": p.data.classes, "skipped": p.data.skipped,
                    "changed": p.data.notes, "ignored": p.data.ignored,
                    "split_sizes": p.split_sizes},
    })


def open_tracker(p: Plan, arm: str, seed: int, fold: int | None) -> Tracker:
    """The SwanLab run of one (arm, seed, fold)."""
    cfg = p.cfg
    return Tracker(cfg.swanlab_mode, cfg.swanlab_project, p.out / "swanlog",
                   unit_label(arm, seed, fold), arm, [arm, cfg.preset, f"seed{seed}"],
                   {**C.to_dict(cfg), "arm": arm, "seed": seed, "fold": fold,
                    "arm_augmentations": arm_augmentations(arm, cfg.augmentations)})


def record_unit(p: Plan, tracker: Tracker, r: RunResult) -> None:
    """End the unit's SwanLab run (with its confusion matrix) and write its result
    atomically: the one place a result is written, whichever path trained it."""
    if r.ok:
        split = "test" if r.test is not None else "val"
        tracker.log_confusion(f"{split}/confusion", r.primary.confusion, p.data.classes,
                              f"{unit_label(r.arm, r.seed, r.fold)}: {split}",
                              step=len(r.history))
    tracker.finish()
    atomic_write_json(run_file(p.out, r.arm, r.seed, r.fold), r.to_dict())
    if not r.ok:
        print(f"run {r.arm} seed {r.seed}" + ("" if r.fold is None else f" fold {r.fold}")
              + f" failed: {r.error}; going on with the next pair", file=sys.stderr, flush=True)


def record_returned(p: Plan, r: RunResult, examples: tuple | None) -> None:
    """Log a unit trained elsewhere (a Ray worker) as :func:`run_unit` logs it live, and
    write it."""
    tracker = open_tracker(p, r.arm, r.seed, r.fold)
    try:
        if examples is not None:
            tracker.log_examples(*examples, p.data.sample_rate)
        for log in r.history:
            tracker.log(log.scalars(), step=log.epoch)
    except BaseException as e:
        tracker.abort("interrupted" if isinstance(e, KeyboardInterrupt) else repr(e))
        raise
    record_unit(p, tracker, r)


def run_unit(p: Plan, arm: str, seed: int, fold: int | None, progress: bool,
             write: bool = True) -> RunResult:
    """Train one (arm, seed, fold) with SwanLab logging and write its result atomically.

    ``write=False`` (torchrun's ranks other than 0): train only, log and write nothing.
    """
    cfg = p.cfg
    augs = arm_augmentations(arm, cfg.augmentations)
    if not write:
        return train_run(cfg, arm, augs, seed, fold, p.data, p.splits[fold])
    t0 = time.time()
    tracker = open_tracker(p, arm, seed, fold)
    bar = tqdm(total=cfg.epochs if cfg.protocol == "fixed" else cfg.max_epochs,
               desc="  epochs", unit="ep", leave=False, disable=not progress,
               position=1)

    def on_epoch(log: EpochLog) -> None:
        tracker.log(log.scalars(), step=log.epoch)
        bar.set_postfix(loss=f"{log.train_loss:.3f}", val=f"{log.val_acc:.3f}")
        bar.update(1)

    def on_examples(waves, feats) -> None:
        tracker.log_examples(waves[: cfg.log_examples], feats[: cfg.log_examples],
                             p.data.sample_rate)

    try:
        r = train_run(cfg, arm, augs, seed, fold, p.data, p.splits[fold], on_epoch, on_examples)
    except BaseException as e:  # Ctrl-C or an error: the tracker's run ends as aborted
        tracker.abort("interrupted" if isinstance(e, KeyboardInterrupt) else repr(e))
        raise
    finally:
        bar.close()
    r.wall_s = time.time() - t0
    record_unit(p, tracker, r)
    return r


@contextlib.contextmanager
def cli_warnings():
    """Warnings as ``warning: <message>`` lines on stderr (no source line, no category)."""
    old = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr, flush=True)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = old


def _units_of(cfg: C.Config) -> list[tuple[str, int, int | None]]:
    arms = expand_arms(cfg.arms, cfg.augmentations)
    return [(a, s, f) for a in arms for s in cfg.seeds for f in fold_list(cfg)]


def main(argv=None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as e:  # --help (0) or a bad option (2, already printed)
        return e.code if isinstance(e.code, int) else 2
    progress = not args.no_progress
    state: dict = {}
    threads = torch.get_num_threads()  # --cpus-per-run changes it for this command only
    with cli_warnings():
        try:
            return _main(args, argv, progress, state)
        except KeyboardInterrupt:
            units, out = state.get("units"), state.get("out")
            if units is None:
                print("interrupted before any pair started; re-run the same command to start",
                      file=sys.stderr)
            else:
                done = read_finished(out) if out is not None else {}
                n = sum(u in done for u in units)
                print(f"interrupted; {n} of {len(units)} pairs done; re-run the same command "
                      "to resume", file=sys.stderr)
            return 130
        finally:
            torch.set_num_threads(threads)
            if state.get("torchrun"):
                from .distributed import close_torchrun

                close_torchrun()


def _plan_and_write(cfg: C.Config, args: argparse.Namespace, argv, progress: bool,
                    state: dict) -> tuple[Plan, tuple[torch.device, float] | None]:
    """Plan and write config.json as the path asks: here, for Ray (data on the CPU), or
    on every torchrun rank (rank 0 first: it decodes and writes; the others then load
    the cache). Returns the plan and, on Ray, the units' device and GPUs per unit."""
    rank, world = D.torchrun_rank_world()
    if world > 1:
        state["torchrun"] = True
        device = D.init_torchrun(cfg.device)
        p, err = None, None
        if rank == 0:
            try:
                p = plan(cfg, progress, retry_failed=args.retry_failed, device=device)
                write_config(p, argv)
            except (ValueError, OSError) as e:
                err = str(e)
        err = D.broadcast(err)
        if err is not None:
            raise ValueError(err)
        if rank != 0:
            try:
                p = plan(cfg, False, retry_failed=args.retry_failed, device=device)
            except (ValueError, OSError) as e:  # rank 0 planned fine: say it here
                print(f"error: rank {rank}: {e}", file=sys.stderr)
                raise
        return p, None
    if cfg.workers > 0 or cfg.ray_address is not None:
        grid = D.grid_device(cfg)
        p = plan(cfg, progress, retry_failed=args.retry_failed, device=torch.device("cpu"))
        p.unit_device = grid[0]
        write_config(p, argv)
        return p, grid
    p = plan(cfg, progress, retry_failed=args.retry_failed)
    write_config(p, argv)
    return p, None


def _main(args: argparse.Namespace, argv, progress: bool, state: dict) -> int:
    rank, world = D.torchrun_rank_world()
    lead = rank == 0  # the only process that writes and prints (torchrun: rank 0)
    progress = progress and lead
    try:
        cfg = C.resolve(args.preset, args.config, overrides_from(args))
        cfg.out = str(cfg.out or f"runs/{cfg.preset}")
        on_ray = cfg.workers > 0 or cfg.ray_address is not None
        if world > 1 and on_ray:
            raise ValueError("torchrun (one pair over several processes) and --workers/"
                             "--ray-address (several pairs at a time) do not combine; use one")
        threads = cfg.cpus_per_run or (1 if on_ray else 0)
        if threads and not on_ray:
            torch.set_num_threads(threads)
        state["units"], state["out"] = _units_of(cfg), Path(cfg.out)
        p, grid = _plan_and_write(cfg, args, argv, progress, state)
    except (ValueError, OSError) as e:
        if lead:
            print(f"error: {e}", file=sys.stderr)
        return 2
    finished = p.finished()
    todo = p.todo(finished)
    if world > 1:  # rank 0's view of the folder is the plan of every rank
        from .distributed import broadcast

        todo = broadcast(todo)
    done_here = sum(u in finished for u in p.units)
    if lead:
        how = (f" on {world} processes" if world > 1 else
               f", {cfg.workers or 'as many as fit'} at a time on Ray" if grid else "")
        print(f"augkit ablation: {len(p.arms)} arms x {len(cfg.seeds)} seeds"
              + (f" x {len(p.folds)} folds" if p.folds != [None] else "")
              + f" on {p.device}{how}; {len(p.data)} clips, {len(p.data.classes)} classes, "
              f"split {p.split_name} {p.split_sizes}; {done_here} done, {len(todo)} to run "
              f"-> {p.out}", flush=True)
    title = f"augkit ablation: {p.out.name}"
    order = p.arm_order(finished)
    problems: list[str] = []
    if grid is not None and todo:  # nothing to run: no Ray runtime to start
        from .distributed import run_grid

        def record(unit, r: RunResult, examples) -> None:
            record_returned(p, r, examples)
            finished[unit] = r
            write_report(p.out, list(finished.values()), order, p.data.classes, title,
                         p.context, plots=False, cancelled=p.cancelled)

        problems = run_grid(cfg, p.data, p.splits, todo, grid[0], grid[1], threads, progress,
                            record)
    elif grid is None:
        bar = tqdm(todo, desc="runs", unit="run", disable=not progress, position=0)
        for arm, seed, fold in bar:
            bar.set_postfix_str(f"{arm} seed {seed}" + ("" if fold is None else f" fold {fold}"))
            finished[(arm, seed, fold)] = run_unit(p, arm, seed, fold, progress, write=lead)
            if lead:
                write_report(p.out, list(finished.values()), order, p.data.classes, title,
                             p.context, plots=False, cancelled=p.cancelled)
        bar.close()
    if not lead:
        return 0
    results = list(finished.values())
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    if not results:
        print("nothing to report", file=sys.stderr)
        return 1
    write_report(p.out, results, order, p.data.classes, title, p.context,
                 cancelled=p.cancelled)
    print()
    print((p.out / "summary.md").read_text())
    plots = [str(p.out / f) for f in ("curves.png", "deltas.png", "confusion.png")
             if (p.out / f).exists()]
    print(f"{len(results)} runs; results: {p.out / 'results.csv'}, {p.out / 'summary.md'}"
          + (f", plots: {', '.join(plots)}" if plots else ""))
    if cfg.swanlab_mode != "disabled":
        print(f"SwanLab ({cfg.swanlab_mode}) runs in {p.out / 'swanlog'}"
              + (f"; dashboard: swanlab watch {p.out / 'swanlog'}"
                 if cfg.swanlab_mode == "local" else ""))
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"{len(failed)} of {len(results)} runs failed (training diverged; listed in "
              f"{p.out / 'summary.md'}); --retry-failed runs them again", file=sys.stderr)
    if problems:
        print(f"{len(problems)} pair(s) did not finish (listed above); re-run the same "
              "command to run them", file=sys.stderr)
    return 1 if failed or problems else 0


if __name__ == "__main__":
    if _signal.getsignal(_signal.SIGINT) is _interrupted_while_starting:
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)  # main() handles it
    warnings.filterwarnings("ignore", message=".*TorchCodec.*")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
