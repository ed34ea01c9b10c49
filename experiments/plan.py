"""What a command runs, checked before any work: the plan, and the results folder's rules.

:func:`plan` checks everything (settings, paths, tracker, the folder's earlier
settings), builds every arm once (:func:`experiments.arms.build_arm`), pushes a batch
through each chain and the model on the CPU, and only then decodes the data onto the
device and makes the splits; nothing is written into ``--out`` before it returns but
the lock file the command holds while it reads and writes the folder
(:mod:`experiments.lock`).

A results folder holds ``config.json`` (the resolved config, grouped, and its
identity), ``dataset.json`` (the data fingerprint) and ``runs/<arm>/seed<k>.json``.
Finished runs are protected: a command whose settings (:func:`check_settings`) or
data (:func:`check_data`) differ from theirs is refused, never mixed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import timm
import torch
import torchaudio

import augkit

from . import config as C
from .arms import Arm, build_arm, cancelled_arms, expand_arms, unnormalized_features
from .augmentations import folder_skipped
from .data.audioset import AudioSet
from .data.decode import load_dataset
from .data.scan import Scan, scan_clips
from .data.splits import make_splits, resolve_kind
from .data.synthetic import MANIFEST, generate_synthetic_gtzan
from .io import atomic_write_json, first_line
from .reporting.tracking import check_mode
from .training.results import RunResult
from .training.trainer import Recipe, build_model

Unit = tuple[str, int, "int | None"]


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchaudio": torchaudio.__version__, "timm": timm.__version__,
            "augkit": augkit.__version__, "platform": platform.platform()}


def dataset_path(data: C.DataConfig, cache_dir: str, progress: bool) -> Path:
    """The dataset to load: ``data.path``, or the embedded synthetic set (generated once
    into ``cache_dir``).

    For the synthetic set with ``split`` ``manifest`` or ``auto`` (the quick preset)
    this is its manifest, whose ``split`` column says which recording conditions each
    clip has.
    """
    if data.path is not None:
        return Path(data.path).expanduser()
    tag = hashlib.sha1(json.dumps(data.synthetic, sort_keys=True).encode()).hexdigest()[:10]
    try:
        folder = Path(generate_synthetic_gtzan(Path(cache_dir).expanduser() / f"synthetic-{tag}",
                                               progress=progress, **data.synthetic))
    except TypeError as e:
        raise ValueError(f"synthetic: {e}") from None
    return folder.parent / MANIFEST if data.split in ("manifest", "auto") else folder


def run_file(out: Path, arm: str, seed: int, fold: int | None) -> Path:
    return out / "runs" / arm / (f"seed{seed}" + ("" if fold is None else f"-fold{fold}") +
                                 ".json")


def check_paths(runtime: C.RuntimeConfig) -> None:
    """--out and --cache-dir must be (or become) folders we can write."""
    cache = Path(runtime.cache_dir)
    for flag, folder in (("--out", Path(runtime.out)), ("--cache-dir", cache),
                         ("--cache-dir", cache / "decoded")):
        folder = folder.expanduser()
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"{flag} {folder} is a file; give a folder")
        existing = next((p for p in (folder, *folder.absolute().parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise ValueError(f"{flag} {folder}: {existing} is a file, not a folder")
        if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
            raise ValueError(f"{flag} {folder}: cannot write into {existing} (permission "
                             "denied)")


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def check_outside_data(runtime: C.RuntimeConfig, data: Path) -> None:
    """--out and --cache-dir must not lie inside a dataset folder: what a run writes there
    (runs/, decoded/) would be scanned as class folders by the next command."""
    if not data.is_dir():
        return  # a CSV manifest lists its files: a folder beside it is never scanned
    for flag, folder in (("--out", runtime.out), ("--cache-dir", runtime.cache_dir)):
        if _inside(Path(folder).expanduser(), data):
            raise ValueError(f"{flag} {folder} is inside --data {data}: the next command "
                             "would scan what this one writes there as a class folder; put "
                             f"{flag} outside the dataset folder")


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

    The folder's ``config.json`` is read back as a :class:`~experiments.config.Config`
    (:func:`experiments.config.stored`: a flat one, written before the config had groups,
    is migrated; one of augkit 0.2 is refused) and its identity compared with ``cfg``'s.
    Only finished runs are protected: a folder whose earlier command failed before
    finishing a run (a typo, a bad path) accepts the corrected command.
    """
    if not finished_files(out):
        return
    old = _read_config(out)
    if not old or not isinstance(old.get("config"), dict):
        raise ValueError(f"{out} holds finished runs but no readable config.json to check "
                         f"them against. {_new_folder_hint(out)}")
    try:
        before = C.stored(old["config"])
    except ValueError as e:
        raise ValueError(f"{out}: {e}. {_new_folder_hint(out)}") from None
    diff = C.identity_diff(before, cfg)
    if diff:
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


_DUPLICATES_NAMED = 5  # groups of duplicates named in the message (config.json has them all)


def find_duplicates(ds: AudioSet, assignment: list[str]) -> list[list[str]]:
    """Clips with the same content digest in two splits or under two labels.

    Returns:
        One list per digest that is shared across splits or labels, each clip as
        ``"<id> (<split>, label <class>)"``; clips in no split (``assignment`` ``""``)
        are left out, and copies within one split and label are no leak.
    """
    labels = ds.labels.tolist()
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(ds.digests or []):
        if d and assignment[i]:
            groups.setdefault(d, []).append(i)
    out = []
    for members in groups.values():
        if len(members) > 1 and len({(assignment[i], labels[i]) for i in members}) > 1:
            out.append([f"{ds.ids[i]} ({assignment[i]}, label {ds.classes[labels[i]]})"
                        for i in members])
    return sorted(out)


def check_duplicates(duplicates: list[list[str]], strict: bool, gtzan: bool) -> None:
    """Warn (``strict``: refuse) when the same audio is in two splits or under two labels:
    test leakage or label noise (a symlinked folder, a manifest alias, a copied file)."""
    if not duplicates:
        return
    shown = "; ".join(" = ".join(g) for g in duplicates[:_DUPLICATES_NAMED])
    more = len(duplicates) - _DUPLICATES_NAMED
    text = (f"the same audio (one content digest) is in two splits or under two labels, "
            f"{len(duplicates)} time(s): {shown}" + (f"; and {more} more" if more > 0 else ""))
    hint = (" (GTZAN holds known exact repetitions; the fault-filtered split leaves them "
            "out)" if gtzan else "")
    if strict:
        raise ValueError(f"{text}{hint}; remove or relabel the copies (--strict-duplicates)")
    warnings.warn(f"{text}{hint}; every one is listed in config.json; --strict-duplicates "
                  "refuses such data", stacklevel=3)


def check_batch_size(optim: C.OptimConfig, splits: dict) -> None:
    """Warn when ``batch_size`` exceeds the training split: the batch is the whole split."""
    n = min(int(s["train"].shape[0]) for s in splits.values())
    if optim.batch_size > n:
        warnings.warn(f"batch_size={optim.batch_size} is larger than the training split "
                      f"({n} clips): every step trains on the whole split, a batch of {n}",
                      stacklevel=3)


def check_model(model_cfg: C.ModelConfig, arms: list[Arm], crop_seconds: float,
                sample_rate: int) -> None:
    """Push one batch through every arm's chain (a copy) and the model, on the CPU."""
    crop = int(round(crop_seconds * sample_rate))
    x = None
    for arm in arms:
        chain = copy.deepcopy(arm.chain)
        g = torch.Generator().manual_seed(0)
        wave = 0.1 * torch.randn(2, 1, crop, generator=g)
        try:
            if arm.normalize == "freq":
                chain["normalize"].fit(unnormalized_features(chain, wave))
            out, _ = chain.train()(wave, target=torch.tensor([0, chain.num_classes - 1]),
                                   generator=g)
        except RuntimeError as e:
            raise ValueError(f"the augmentation chain {chain.names} (normalize "
                             f"{arm.normalize!r}) fails on a {crop_seconds:g} s crop: "
                             f"{first_line(e)}") from None
        x = out if x is None else x
    try:  # pretrained weights load here
        model = build_model(model_cfg, arms[0].chain.num_classes, torch.device("cpu"))
    except (TypeError, RuntimeError) as e:
        raise ValueError(f"backbone {model_cfg.backbone!r} (backbone_kwargs "
                         f"{model_cfg.backbone_kwargs}, pretrained {model_cfg.pretrained!r}): "
                         f"{first_line(e)}") from None
    model.eval()
    try:
        with torch.no_grad():
            model(x.contiguous(memory_format=torch.channels_last))
    except RuntimeError as e:
        raise ValueError(f"backbone {model_cfg.backbone!r} cannot take the model input of shape "
                         f"{tuple(x.shape)} (n_mels={x.shape[-2]}, crop_seconds="
                         f"{crop_seconds:g}): {first_line(e)}") from None


def _scan_set(scan: Scan) -> AudioSet:
    """An AudioSet without audio, from a scan: to check the splits before decoding."""
    classes = scan.classes
    n = len(scan.ids)
    return AudioSet(torch.zeros(n, dtype=torch.int16), torch.arange(n),
                    torch.ones(n, dtype=torch.int64),
                    torch.tensor([classes.index(c) for c in scan.labels], dtype=torch.int64),
                    list(scan.ids), classes, 1, [], scan.splits)


def fold_list(data: C.DataConfig, fold: str) -> list[int | None]:
    """The folds this command runs: ``[None]`` without k-fold."""
    if data.split != "kfold":
        return [None]
    return list(range(data.folds)) if fold == "all" else [int(fold)]


def make_all_splits(data: C.DataConfig, allow_missing_classes: bool, ds: AudioSet,
                    folds: list[int | None]
                    ) -> tuple[dict[int | None, dict[str, torch.Tensor]], list[str]]:
    """The splits of each fold, and each clip's assignment (its split; for k-fold, its
    validation fold among all ``data.folds``) for the fingerprint."""

    def one(f):
        return make_splits(ds, data.split, folds=data.folds, fold=f or 0,
                           allow_missing_classes=allow_missing_classes)

    splits = {f: one(f) for f in folds}
    assignment = [""] * len(ds)
    if data.split == "kfold":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for f in range(data.folds):
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
    #: Every arm of this command, built (in the order given).
    arms: dict[str, Arm]
    #: How every unit trains (the model and optim groups, crop, compile).
    recipe: Recipe
    folds: list[int | None]
    data: AudioSet
    splits: dict[int | None, dict[str, torch.Tensor]]
    records: dict[str, list] = field(default_factory=dict)
    #: Clips sharing one content digest across splits or labels (:func:`find_duplicates`).
    duplicates: list[list[str]] = field(default_factory=list)
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
        return [(a, s, f) for a in self.arms for s in self.cfg.runtime.seeds for f in self.folds]

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
        split = self.cfg.data.split
        kind = resolve_kind(self.data, split)
        return split if kind == split else f"{split} ({kind})"

    @property
    def context(self) -> str:
        c, o = self.cfg, self.cfg.optim
        budget = (f"{o.epochs} epochs (fixed)" if o.protocol == "fixed" else
                  f"converge protocol (patience {o.patience}, cap {o.max_epochs} epochs)")
        data = "embedded synthetic set" if c.data.path is None else c.data.path
        return (f"Preset `{c.runtime.preset}`, data: {data}, "
                f"split `{self.split_name}` {self.split_sizes}, backbone `{c.model.backbone}`, "
                f"normalize `{c.frontend.normalize}`, {budget}, device {self.device}.")


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


def plan(cfg: C.Config, device: torch.device, progress: bool, retry_failed: bool = False
         ) -> Plan:
    """Check everything, build every arm, then load the data onto ``device`` and split it.

    Nothing is decoded before the settings, paths, tracker, folder, splits (on the
    scanned file list), chains and model are checked; nothing is written into --out.
    """
    rt = cfg.runtime
    out = Path(rt.out)
    names = expand_arms(rt.arms, cfg.ablation.augmentations)
    check_paths(rt)
    check_mode(rt.swanlab_mode)
    check_settings(out, cfg)
    folds = fold_list(cfg.data, rt.fold)
    path = dataset_path(cfg.data, rt.cache_dir, progress)
    if cfg.data.path is not None:
        check_outside_data(rt, path)
    scan = scan_clips(path)
    if len(scan.classes) < 2:
        raise ValueError(f"a classifier needs at least 2 classes; {scan.source} has "
                         f"{len(scan.classes)}: {', '.join(repr(c) for c in scan.classes)}")
    with warnings.catch_warnings():  # the real splits warn again after decoding
        warnings.simplefilter("ignore")
        make_all_splits(cfg.data, rt.allow_missing_classes, _scan_set(scan), folds)
    arms = {name: build_arm(name, cfg.frontend, cfg.ablation, len(scan.classes))
            for name in names}
    check_model(cfg.model, list(arms.values()), cfg.data.crop_seconds, cfg.frontend.sample_rate)
    ds = load_dataset(path, cfg.frontend.sample_rate, Path(rt.cache_dir).expanduser() / "decoded",
                      max_seconds=cfg.data.max_seconds, progress=progress,
                      listed_in=f"{out / 'config.json'} (dataset.problems)")
    splits, assignment = make_all_splits(cfg.data, rt.allow_missing_classes, ds, folds)
    records = fingerprint(ds, assignment)
    check_data(out, records)
    duplicates = find_duplicates(ds, assignment)
    check_duplicates(duplicates, rt.strict_duplicates, scan.kind == "gtzan")
    check_batch_size(cfg.optim, splits)
    splits = {f: {k: v.to(device) for k, v in s.items()} for f, s in splits.items()}
    cancelled = cancelled_arms(list(arms.values()), cfg.frontend, cfg.ablation,
                               cfg.data.crop_seconds)
    return Plan(cfg, out, arms, Recipe.of(cfg), folds, ds.to(device), splits, records,
                duplicates, retry_failed, cancelled=cancelled)


def write_config(p: Plan, argv: list[str] | None) -> None:
    device = p.device
    atomic_write_json(p.out / "dataset.json", {"clips": p.records})
    atomic_write_json(p.out / "config.json", {
        "config": C.to_dict(p.cfg), "identity": C.identity(p.cfg),
        "data_fingerprint": fingerprint_hash(p.records), "versions": versions(),
        "git_commit": git_commit(), "device": str(device),
        "normalize": p.cfg.frontend.normalize, "protocol": p.cfg.optim.protocol,
        "cancelled_by_normalization": p.cancelled,
        "device_name": (torch.cuda.get_device_name(device) if torch.cuda.is_available()
                        else "CUDA devices of the Ray cluster") if device.type == "cuda"
        else f"{platform.machine()} CPU ({torch.get_num_threads()} threads)",
        "command": " ".join([Path(sys.executable).name, "-m", "experiments.ablate",
                             *(sys.argv[1:] if argv is None else argv)]),
        "dataset": {"path": "embedded synthetic" if p.cfg.data.path is None
                    else p.cfg.data.path, "clips": len(p.data),
                    "classes": p.data.classes, "skipped": p.data.skipped,
                    "changed": p.data.notes, "ignored": p.data.ignored,
                    "problems": p.data.problems, "duplicates": p.duplicates,
                    "split_sizes": p.split_sizes},
        "banks": banks_skipped(p.cfg),
    })


def banks_skipped(cfg: C.Config) -> dict[str, dict]:
    """``--noise-dir``/``--ir-dir``: each folder and every file its loader skipped, by
    reason (:class:`augkit.banks.SkippedFilesWarning`'s ``skipped``)."""
    ab = cfg.ablation
    return {flag: {"folder": folder, "skipped": folder_skipped(folder,
                                                              cfg.frontend.sample_rate)}
            for flag, folder in (("noise_dir", ab.noise_dir), ("ir_dir", ab.ir_dir))
            if folder is not None}
