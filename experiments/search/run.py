"""Find the recipe for your data: augmentation search on validation, on Ray Tune.

``python -m experiments.search --data DIR --budget-trials N --budget-minutes M --out O``

Each trial samples a point of the space (:mod:`experiments.search.space`: per family,
on or off, its magnitude ``m`` and its chance ``p``), builds that recipe as the
runner's ``all`` arm and trains it with the runner's own training code
(:func:`experiments.training.trainer.train_run`, the preset's protocol), reporting
validation accuracy to Ray Tune after every epoch. Random search
(``BasicVariantGenerator(random_state=--search-seed)``) proposes the trials and ASHA
stops the weak ones on validation accuracy after ``--grace-period`` epochs. The best
trial (highest validation accuracy at its selected epoch) is written as
``<out>/recipe.json``, a file ``python -m experiments.ablate --config`` loads (its arm
``all`` is the recipe).

**Honest selection.** The search decodes the training and validation clips only: the
split is made on the scanned file list and the test files are never opened
(:func:`load_train_val`); the test split is read once, later, by the ablation runner
on fresh seeds.

**Seeds.** Every trial trains with :data:`TRIAL_SEED` (the same seed for every recipe,
so that trials differ by their recipe only); confirmation runs use
:data:`CONFIRM_SEEDS`. Both are disjoint from each other and from the runner's default
seeds (0, 1, 2).

**Why a separate entry point, not an ``ablate`` mode.** An ablation is a fixed grid
whose every unit reads test once and is reported with paired intervals; a search is
adaptive (trials are proposed and stopped on validation), must never decode test, keeps
its state in Ray Tune's experiment folder, not in per-unit result files, and has its
own budget flags (trials, minutes) and resume rule (a changed space is refused). Sharing
``ablate``'s command line would make every one of its flags mean something else in
search mode; the two share the config, the data loading and the training code instead.

**Ray Tune.** Storage goes under ``<out>/search`` (``RunConfig(storage_path=...)``, an
absolute path); ``--data`` and ``--cache-dir`` are made absolute, since trials change
directory; checkpoints are kept with ``num_to_keep=1`` and a trial's are deleted when
it ends (trials report none today: a trial that did not finish restarts from epoch 1);
actors are reused (``reuse_actors=True``). Re-running the same command resumes the
search (``Tuner.can_restore`` / ``Tuner.restore``); a changed ``--space`` or changed
settings are refused in one line. Compute is reported in core-hours (GPU-hours on GPUs).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import re
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from .. import config as C
from ..arms import build_arm
from ..data.audioset import AudioSet
from ..data.decode import load_dataset
from ..io import atomic_write_json
from ..plan import _scan_set, dataset_path, make_all_splits
from ..scale.ray_grid import pack, unpack
from ..training.trainer import Recipe, train_run
from . import confirm as K
from . import space as S

ROOT = Path(__file__).resolve().parents[2]
#: The seed every search trial trains with (common to all recipes).
TRIAL_SEED = 10_000
#: Seeds of the re-ranking of the top recipes (on validation; not used by the trials).
RERANK_SEEDS = (10_001, 10_002, 10_003)
#: Seeds of the confirmation runs (fresh: never used by the search nor the re-ranking).
CONFIRM_SEEDS = (20_000, 20_001, 20_002)
#: The metric ASHA and the selection read: validation accuracy (multi-crop).
METRIC = "val_acc"
#: Test hook: ``"<trial index>:<marker file>"`` makes that trial's first attempt write the
#: marker after epoch 1 and wait there (to interrupt the search).
HOLD_ENV = "AUGKIT_TEST_HOLD_TRIAL"
#: Where the search's settings are recorded, to refuse a changed resume.
STATE_FILE = "search_state.json"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> _Parser:
    p = _Parser(prog="python -m experiments.search", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="quick", help="a runner preset (quick, fsdd, ...) or a "
                   "search preset (search-quick): experiments/configs/<name>.json")
    p.add_argument("--config", default=None, help="a JSON file of runner settings")
    p.add_argument("--data", default=None, help="dataset folder or CSV manifest (default: "
                   "the preset's; the embedded synthetic set)")
    p.add_argument("--out", default=None, help="results folder (default: runs/search-<preset>)")
    p.add_argument("--cache-dir", default=None, help="decoded audio and the synthetic set")
    p.add_argument("--space", default=None, help="families to search: a comma list "
                   "(gain,colored_noise,band_limit) or a JSON file; default: the preset's "
                   "augmentations that have a magnitude")
    p.add_argument("--budget-trials", type=int, default=None, help="trials at most")
    p.add_argument("--budget-minutes", type=float, default=None,
                   help="wall-clock minutes at most")
    p.add_argument("--grace-period", type=int, default=None,
                   help="ASHA: epochs every trial trains before it can be stopped (default 3)")
    p.add_argument("--search-seed", type=int, default=None,
                   help="seed of the random search (default 0)")
    p.add_argument("--max-concurrent", type=int, default=None,
                   help="trials at a time (default: the CPUs / --cpus-per-trial)")
    p.add_argument("--cpus-per-trial", type=int, default=None, help="default 1")
    p.add_argument("--gpus-per-trial", type=float, default=None,
                   help="fractional GPUs per trial (0.25 packs four); default 0 on the CPU")
    p.add_argument("--cv", type=int, default=None, metavar="K", help="score each recipe by "
                   "K-fold cross-validation on the training and validation clips pooled "
                   "(never test) instead of the validation split: for a small or "
                   "one-speaker validation split (default 0: off)")
    p.add_argument("--cv-group", default=None, metavar="REGEX", help="with --cv: keep each "
                   "group in one part of every fold, the group read from each file name by "
                   r"a regex with (?P<group>...), e.g. '^\d+_(?P<group>[a-z]+)_' (speakers)")
    p.add_argument("--rerank-top", type=int, default=None, help="re-rank this many of the "
                   "best recipes on validation with more seeds (default 3; 1: no re-ranking)")
    p.add_argument("--rerank-seeds", type=int, default=None,
                   help="seeds of the re-ranking (default 3)")
    p.add_argument("--confirm-seeds", type=int, default=None,
                   help="fresh seeds of the confirmation (default 3)")
    p.add_argument("--no-confirm", dest="confirm", action="store_const", const=False,
                   default=None, help="stop after the re-ranking: test is not read")
    p.add_argument("--ray-address", default=None, help="join a Ray cluster: HOST:PORT")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a runner config field, e.g. --set max_epochs=20")
    p.add_argument("--no-progress", action="store_true")
    return p


#: The search's own settings and their defaults (a search preset's "search" group).
SEARCH_DEFAULTS: dict[str, Any] = {"space": None, "budget_trials": 20, "budget_minutes": 60.0,
                                   "grace_period": 3, "search_seed": 0, "max_concurrent": None,
                                   "cpus_per_trial": 1, "gpus_per_trial": 0.0,
                                   "rerank_top": 3, "rerank_seeds": 3, "confirm_seeds": 3,
                                   "confirm": True, "cv": 0, "cv_group": None}


@dataclasses.dataclass
class Search:
    """One search: the runner config, the families, the budget and where it goes."""

    cfg: C.Config
    out: Path
    families: list[str]
    budget_trials: int
    budget_minutes: float
    grace_period: int
    search_seed: int
    max_concurrent: int
    cpus_per_trial: int
    gpus_per_trial: float
    ray_address: str | None = None
    progress: bool = True
    rerank_top: int = 3
    rerank_seeds: int = 3
    confirm_seeds: int = 3
    confirm: bool = True
    cv: int = 0
    cv_group: str | None = None
    #: The confirmation's runner config: ``cfg`` without a search preset's ``settings``.
    confirm_cfg: C.Config | None = None

    @property
    def storage(self) -> Path:
        return self.out / "search"

    @property
    def max_epochs(self) -> int:
        o = self.cfg.optim
        return o.epochs if o.protocol == "fixed" else o.max_epochs

    def state(self) -> dict[str, Any]:
        """What must match for a resume: the space, the seed and the runner's identity."""
        return {"families": self.families, "search_seed": self.search_seed,
                "grace_period": self.grace_period, "trial_seed": TRIAL_SEED,
                "rerank_top": self.rerank_top, "rerank_seeds": self.rerank_seeds,
                "cv": self.cv, "cv_group": self.cv_group,
                "identity": C.identity(self.cfg)}


def _preset(name: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(runner preset, its settings, search settings)`` of ``--preset``."""
    path = C.CONFIG_DIR / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"unknown preset {name!r} (no {path})")
    data = json.loads(path.read_text())
    if "search" not in data:
        return name, {}, {}
    return data.get("preset", "quick"), data.get("settings", {}), data["search"]


def _check_numbers(s: dict[str, Any]) -> None:
    """The search's numeric settings, in one-line errors naming the flag."""
    if int(s["budget_trials"]) < 1 or not float(s["budget_minutes"]) > 0:
        raise ValueError("--budget-trials must be >= 1 and --budget-minutes > 0")
    if int(s["cv"]) == 1 or int(s["cv"]) < 0:
        raise ValueError(f"--cv must be 0 (off) or >= 2 folds, got {s['cv']}")
    for key, low in (("grace_period", 1), ("cpus_per_trial", 1), ("rerank_top", 1),
                     ("rerank_seeds", 0), ("confirm_seeds", 2)):
        if int(s[key]) < low:
            raise ValueError(f"--{key.replace('_', '-')} must be >= {low}, got {s[key]}")


def _cv_group(pattern: str | None, cv: int) -> str | None:
    """``--cv-group``: checked to compile with a ``group`` name, and only with ``--cv``."""
    if pattern is None:
        return None
    if cv < 2:
        raise ValueError("--cv-group needs --cv K (K >= 2 folds)")
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise ValueError(f"--cv-group {pattern!r} is not a regular expression: {e}") from None
    if "group" not in regex.groupindex:
        raise ValueError(f"--cv-group must name its group (?P<group>...), got {pattern!r}")
    return pattern


def _runner_config(base: str, config: str | None, overrides: dict[str, Any]) -> C.Config:
    """The runner's :class:`Config`, with the data and cache as absolute paths."""
    cfg = C.resolve(base, config, overrides)
    if cfg.data.path is not None:
        cfg.data.path = str(Path(cfg.data.path).expanduser().resolve())
    cfg.runtime.cache_dir = str(Path(cfg.runtime.cache_dir).expanduser().resolve())
    return cfg


def resolve(argv: list[str] | None = None) -> Search:
    """A checked :class:`Search` from the command line; errors are one line."""
    args = _parser().parse_args(argv)
    base, settings, search = _preset(args.preset)
    unknown = set(search) - set(SEARCH_DEFAULTS)
    if unknown:
        raise ValueError(f"preset {args.preset}: unknown search settings {sorted(unknown)}")
    overrides: dict[str, Any] = {}
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip()] = value
    if args.data is not None:  # absolute: trials change directory
        overrides["path"] = str(Path(args.data).expanduser().resolve())
    if args.cache_dir is not None:
        overrides["cache_dir"] = str(Path(args.cache_dir).expanduser().resolve())
    overrides.update(swanlab_mode="disabled", preset=base)
    cfg = _runner_config(base, args.config, {**settings, **overrides})
    # the confirmation: the runner preset's protocol, without the search preset's
    # settings for its trials (a lower epoch cap); the command's own --set still applies
    confirm_cfg = _runner_config(base, args.config, overrides) if settings else cfg
    s = {**SEARCH_DEFAULTS, **search}
    for key in SEARCH_DEFAULTS:
        if getattr(args, key, None) is not None:
            s[key] = getattr(args, key)
    if s["space"] is None:
        families = [a for a in cfg.ablation.augmentations if a in S.MAGNITUDES]
        if not families:
            raise ValueError("--space: the preset's augmentations have no magnitude; give "
                             "--space a,b,c")
    else:
        families = S.parse_space(s["space"] if isinstance(s["space"], str)
                                 else ",".join(s["space"]))
    _check_numbers(s)
    cpus = int(s["cpus_per_trial"])
    concurrent = s["max_concurrent"] or max(1, (os.cpu_count() or 1) // cpus)
    out = Path(args.out or f"runs/search-{args.preset}").expanduser().resolve()
    return Search(cfg, out, families, int(s["budget_trials"]), float(s["budget_minutes"]),
                  int(s["grace_period"]), int(s["search_seed"]), int(concurrent), cpus,
                  float(s["gpus_per_trial"]), args.ray_address, not args.no_progress,
                  int(s["rerank_top"]), int(s["rerank_seeds"]), int(s["confirm_seeds"]),
                  bool(s["confirm"]), int(s["cv"]), _cv_group(s["cv_group"], int(s["cv"])),
                  confirm_cfg)


def load_train_val(cfg: C.Config, progress: bool = False
                   ) -> tuple[AudioSet, dict[str, torch.Tensor]]:
    """Decode the training and validation clips only, and their splits.

    The split is made on the scanned file list (as the runner checks it before
    decoding); the test clips are dropped before any file is opened. Returns the
    clips (CPU) and ``{"train", "val"}`` indices into them. For k-fold, the fold is
    ``runtime.fold`` (0 by default).
    """
    path = dataset_path(cfg.data, cfg.runtime.cache_dir, progress)
    fold = None if cfg.data.split != "kfold" else int(cfg.runtime.fold)
    seen: dict = {}

    def train_and_val(scan):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            splits, _ = make_all_splits(cfg.data, cfg.runtime.allow_missing_classes,
                                        _scan_set(scan), [fold])
        keep = sorted({int(i) for k in ("train", "val") for i in splits[fold][k].tolist()})
        sub = dataclasses.replace(
            scan, files=[scan.files[i] for i in keep], ids=[scan.ids[i] for i in keep],
            labels=[scan.labels[i] for i in keep],
            splits=None if scan.splits is None else [scan.splits[i] for i in keep])
        if sub.classes != scan.classes:
            raise ValueError(f"classes {sorted(set(scan.classes) - set(sub.classes))} have "
                             "no training or validation clip")
        seen.update(scan=scan, split=splits[fold])
        return sub

    ds = load_dataset(path, cfg.frontend.sample_rate, cfg.runtime.cache_dir,
                      cfg.data.max_seconds, progress, select=train_and_val)
    scan, split = seen["scan"], seen["split"]
    row = {clip_id: k for k, clip_id in enumerate(ds.ids)}
    out = {k: torch.tensor([row[scan.ids[int(i)]] for i in split[k].tolist()
                            if scan.ids[int(i)] in row], dtype=torch.int64)
           for k in ("train", "val")}
    return ds, out


def cv_folds(ds: AudioSet, splits: dict[str, torch.Tensor], k: int, group: str | None,
             seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """``k`` cross-validation folds of the training and validation clips pooled (never
    test): grouped by ``group`` (a regex with ``(?P<group>...)`` on each clip's file name,
    e.g. the speaker; no group in two parts of a fold) or else stratified by class.

    Returns ``[{"train": idx, "val": idx}, ...]``, indices into ``ds``.
    """
    import numpy as np
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    pool = torch.cat([splits["train"], splits["val"]]).sort().values
    y = ds.labels[pool].cpu().numpy()
    if group is None:
        counts = np.bincount(y, minlength=len(ds.classes))
        if counts.min() < k:
            c = ds.classes[int(counts.argmin())]
            raise ValueError(f"--cv {k}: class {c!r} has {int(counts.min())} training and "
                             f"validation clip(s), fewer than the {k} folds")
        parts = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(pool, y)
    else:
        regex = re.compile(group)
        names = [Path(ds.ids[int(i)]).name for i in pool]
        found = [regex.search(n) for n in names]
        if None in found:
            raise ValueError(f"--cv-group {group!r} does not match the file name "
                             f"{names[found.index(None)]!r}")
        groups = [m.group("group") for m in found]
        if len(set(groups)) < k:
            raise ValueError(f"--cv {k}: --cv-group finds {len(set(groups))} group(s) in "
                             f"the training and validation clips ({', '.join(sorted(set(groups)))}"
                             f"), fewer than the {k} folds")
        parts = GroupKFold(n_splits=k).split(pool, y, groups)
    folds = [{"train": pool[torch.as_tensor(tr)], "val": pool[torch.as_tensor(va)]}
             for tr, va in parts]
    for j, f in enumerate(folds):
        missing = set(range(len(ds.classes))) - set(ds.labels[f["train"]].tolist())
        if missing:
            raise ValueError(f"--cv fold {j}: class {ds.classes[min(missing)]!r} has no "
                             "training clip; use fewer folds or other groups")
    return folds


# ---------------------------------------------------------------------------
# One trial, in a Ray worker

_DATA: dict[int, tuple[AudioSet, list[dict[str, torch.Tensor]]]] = {}  # per worker process


def _trial_data(setup: dict[str, Any]) -> tuple[AudioSet, list[dict[str, torch.Tensor]]]:
    """The clips on the trial's device and its folds (one: the validation split), loaded
    once per worker process (actors are reused)."""
    key = id(setup["packed"])
    if key not in _DATA:
        _DATA.clear()
        device = torch.device(setup["device"])
        ds = unpack(setup["packed"]).to(device)
        _DATA[key] = ds, [{k: torch.as_tensor(v).to(device) for k, v in fold.items()}
                          for fold in setup["folds"]]
    return _DATA[key]


def recipe_ablation(cfg: C.Config, families: dict[str, tuple[float, float]]
                    ) -> tuple[dict[str, Any], C.AblationConfig]:
    """The recipe of ``families`` (``name -> (m, p)``) and the run's ablation group with
    it as the augmentations (arm ``all``)."""
    rec = S.recipe(families, cfg.frontend.sample_rate, cfg.ablation.augment)
    return rec, dataclasses.replace(cfg.ablation, augmentations=rec["augmentations"],
                                    augment=rec["augment"])


def _families(config: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """A trial's recipe: a point of the space, or (re-ranking) ``"families"`` as JSON."""
    if "families" not in config:
        return S.families_of(config)
    fams = config["families"]
    fams = json.loads(fams) if isinstance(fams, str) else fams
    return {n: (float(m), float(p)) for n, (m, p) in fams.items()}


def trial(config: dict[str, Any], setup: dict[str, Any]) -> None:
    """Train the recipe of ``config`` with :data:`TRIAL_SEED` (or ``config["seed"]``).

    ``config`` is a point of :func:`experiments.search.space.tune_space`, or (re-ranking)
    ``{"families": {name: [m, p]}, "seed": seed}``. On the validation split it reports
    after every epoch (``val_acc``, and ``best_val_acc``: the selected epoch's so far);
    with cross-validation (``--cv``) after every fold, both the mean over the folds so
    far of each fold's selected-epoch accuracy.
    """
    from ray import tune

    cfg: C.Config = setup["cfg"]
    torch.set_num_threads(setup["threads"])
    data, folds = _trial_data(setup)
    rec, ablation = recipe_ablation(cfg, _families(config))
    seed = int(config.get("seed", TRIAL_SEED))
    index, _, marker = os.environ.get(HOLD_ENV, "").partition(":")
    hold = bool(marker) and tune.get_context().get_trial_id().endswith(f"_{int(index):05d}")
    cv = len(folds) > 1
    accs: list[float] = []
    epochs = 0
    for fold in folds:
        best = {"acc": -1.0}

        def on_epoch(log, best=best) -> None:
            best["acc"] = max(best["acc"], log.val_acc)
            if not cv:
                tune.report({METRIC: log.val_acc, "best_val_acc": best["acc"],
                             "val_loss": log.val_loss, "train_acc": log.train_acc,
                             "epoch": log.epoch})
            if hold and log.epoch == 1 and not os.path.exists(marker):
                Path(marker).write_text(str(os.getpid()))
                time.sleep(300)

        arm = build_arm(S.arm_name(rec), cfg.frontend, ablation, len(data.classes))
        r = train_run(arm, Recipe.of(cfg), seed, None, data, fold, on_epoch)
        if not r.ok:
            raise RuntimeError(r.error)
        epochs += len(r.history)
        if cv:
            accs.append(best["acc"])
            mean = sum(accs) / len(accs)
            tune.report({METRIC: mean, "best_val_acc": mean, "fold": len(accs),
                         "epoch": epochs})


def _checkpoint_cleaner():
    """A Tune callback that deletes a trial's checkpoints when it ends."""
    from ray import tune

    class DeleteCheckpoints(tune.Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            for d in Path(trial.path).glob("checkpoint_*") if trial.path else []:
                shutil.rmtree(d, ignore_errors=True)

        on_trial_error = on_trial_complete

    return DeleteCheckpoints()


def _dirname(t) -> str:
    """A trial's folder: ``trial_<id>`` (Tune's default spells out the whole config)."""
    return f"trial_{t.trial_id}"


def check_resume(s: Search) -> bool:
    """Whether a search is already in ``s.out``; refuses a changed space or settings."""
    path = s.out / STATE_FILE
    if not path.is_file():
        return False
    old = json.loads(path.read_text())
    new = json.loads(json.dumps(s.state(), default=str))
    if old["families"] != new["families"]:
        raise ValueError(f"--space changed: {s.out} holds a search over "
                         f"{','.join(old['families'])}, not {','.join(new['families'])}; "
                         "use a new --out")
    changed = sorted(k for k in new if old.get(k) != new[k] and k != "identity")
    changed += sorted(f"{g}.{k}" for g in new["identity"] for k in new["identity"][g]
                      if old["identity"].get(g, {}).get(k) != new["identity"][g][k])
    if changed:
        raise ValueError(f"{s.out} holds a search with other settings ({', '.join(changed)});"
                         " use a new --out, or the same settings to resume")
    return True


def prepare(s: Search) -> dict[str, Any]:
    """Check a resume, decode train and validation (never test), record the search's
    settings; the setup every trial gets (:func:`trial`)."""
    resumed = check_resume(s)
    data, splits = load_train_val(s.cfg, s.progress)
    s.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(s.out / STATE_FILE, s.state())
    folds = cv_folds(data, splits, s.cv, s.cv_group) if s.cv else [splits]
    return {"cfg": s.cfg, "packed": pack(data), "threads": s.cpus_per_trial,
            "num_classes": len(data.classes),
            "folds": [{k: v.numpy() for k, v in f.items()} for f in folds],
            "device": "cuda" if s.gpus_per_trial > 0 else "cpu", "resumed": resumed}


@contextlib.contextmanager
def ray_session(s: Search):
    """Ray, local (as many CPUs as the trials need) or ``--ray-address``; shut down after
    unless it was already running."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    import ray

    started = not ray.is_initialized()
    if started:
        quiet = dict(log_to_driver=False, logging_level=logging.ERROR)
        if s.ray_address:
            ray.init(address=s.ray_address, **quiet)
        else:
            ray.init(num_cpus=max(os.cpu_count() or 1, s.max_concurrent * s.cpus_per_trial),
                     include_dashboard=False, **quiet)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def tuner(s: Search, setup: dict[str, Any], name: str, param_space: dict[str, Any],
          scheduler=None, search_alg=None, num_samples: int = 1,
          time_budget_s: float | None = None):
    """A Ray Tune ``Tuner`` for experiment ``name`` under ``<out>/search``, restored when
    that experiment exists (a resumed command)."""
    from ray import tune

    trainable = tune.with_resources(tune.with_parameters(trial, setup=setup),
                                    {"cpu": s.cpus_per_trial, "gpu": s.gpus_per_trial})
    path = str(s.storage / name)
    if setup["resumed"] and tune.Tuner.can_restore(path):
        return tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                  restart_errored=True)
    return tune.Tuner(
        trainable, param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=METRIC, mode="max", scheduler=scheduler, search_alg=search_alg,
            num_samples=num_samples, max_concurrent_trials=s.max_concurrent,
            time_budget_s=time_budget_s, reuse_actors=True, trial_dirname_creator=_dirname),
        run_config=tune.RunConfig(
            name=name, storage_path=str(s.storage), verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=2),
            callbacks=[_checkpoint_cleaner()]))


def fit_search(s: Search, setup: dict[str, Any]):
    """The search itself (random search + ASHA, in a :func:`ray_session`); Ray Tune's
    ResultGrid."""
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    # ASHA's time is the reports: epochs, or with --cv the folds (a weak recipe can then
    # be stopped after its first fold)
    max_t, grace = (s.cv, 1) if s.cv else (s.max_epochs, min(s.grace_period, s.max_epochs))
    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max_t,
                              grace_period=grace, reduction_factor=3)
    alg = BasicVariantGenerator(random_state=s.search_seed)
    return tuner(s, setup, "search", S.tune_space(s.families), scheduler, alg,
                 s.budget_trials, s.budget_minutes * 60).fit()


def run_search(s: Search):
    """Run (or resume) the search alone; returns Ray Tune's ResultGrid."""
    setup = prepare(s)
    with ray_session(s):
        return fit_search(s, setup)


def trials_table(results, s: Search) -> list[dict[str, Any]]:
    """One row per trial: its recipe, best validation accuracy, epochs and time."""
    rows = []
    for r in results:
        if r.config is None:
            continue
        hist = r.metrics_dataframe
        # the last report: the selected epoch's so far, or with --cv the mean of the folds
        best = (float(hist["best_val_acc"].iloc[-1]) if hist is not None and len(hist)
                else math.nan)
        epochs = int(hist["epoch"].max()) if hist is not None and len(hist) else 0
        seconds = float(hist["time_total_s"].max()) if hist is not None and len(hist) else 0.0
        fams = S.families_of(r.config)
        rows.append({"trial": Path(r.path).name.removeprefix("trial_") if r.path else "?",
                     "recipe": " + ".join(f"{n}(m={m:.2f},p={p:.2f})"
                                          for n, (m, p) in fams.items()) or "baseline",
                     "val_acc": best, "epochs": epochs, "seconds": seconds,
                     "error": r.error is not None, "config": r.config})
    rows.sort(key=lambda row: row["trial"])
    return rows


def report(s: Search, rows: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """Write ``search.json`` and ``search.md``; return the summary (``recipe``: the best
    trial's, before any re-ranking)."""
    done = [r for r in rows if not math.isnan(r["val_acc"])]
    if not done:
        raise RuntimeError("no trial reported a validation accuracy")
    best = max(done, key=lambda r: (r["val_acc"], -r["epochs"]))
    rec = S.recipe(S.families_of(best["config"]), s.cfg.frontend.sample_rate,
                   s.cfg.ablation.augment)
    unit, hours = K.compute_hours(s, sum(r["seconds"] for r in rows))
    summary = {"best": {k: best[k] for k in ("trial", "recipe", "val_acc", "epochs")},
               "recipe": rec, "trials": len(rows), "trial_seed": TRIAL_SEED,
               "confirm_seeds": list(CONFIRM_SEEDS), "families": s.families,
               "search_seed": s.search_seed, "compute": {unit: hours, "wall_s": wall_s},
               "table": [{k: v for k, v in r.items() if k != "config"} for r in rows]}
    atomic_write_json(s.out / "search.json", summary)
    write_markdown(s, summary)
    return summary


def write_markdown(s: Search, summary: dict[str, Any], top: int = 5) -> None:
    """``search.md``: the trajectory plot (validation accuracy per trial against the
    compute spent, best so far) and the table of the top recipes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["table"]
    unit, hours = next(iter(summary["compute"].items()))
    per = hours / max(sum(r["seconds"] for r in rows), 1e-12)
    spent, acc, best, total, high = [], [], [], 0.0, -1.0
    for r in rows:
        total += r["seconds"] * per
        high = max(high, r["val_acc"]) if not math.isnan(r["val_acc"]) else high
        spent.append(total)
        acc.append(r["val_acc"])
        best.append(high)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(spent, acc, "o", label="trial (best epoch)")
    ax.step(spent, best, where="post", label="best so far")
    ax.set_xlabel(f"compute spent ({unit})")
    ax.set_ylabel("validation accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(s.out / "search_trajectory.png", dpi=120)
    plt.close(fig)
    ranked = sorted((r for r in rows if not math.isnan(r["val_acc"])),
                    key=lambda r: (-r["val_acc"], r["epochs"]))[:top]
    grace = "1 fold" if s.cv else f"{s.grace_period} epochs"
    scored = (f"{s.cv}-fold cross-validation of the training and validation clips"
              + (" (grouped by file-name group)" if s.cv_group else "")) if s.cv else "validation"
    lines = [f"# Augmentation search: {', '.join(s.families)}", "",
             f"{len(rows)} trials (random search, seed {s.search_seed}; ASHA, grace period "
             f"{grace}), trial seed {TRIAL_SEED}, {hours:.3g} {unit}, "
             f"{summary['compute']['wall_s'] / 60:.1f} min wall. Selected on {scored} only; "
             "test has not been read.", "", "![trajectory](search_trajectory.png)", "",
             "| rank | trial | recipe | validation accuracy | epochs |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {k} | {r['trial']} | {r['recipe']} | {r['val_acc']:.3f} | {r['epochs']} |"
              for k, r in enumerate(ranked, 1)]
    lines.append("")
    (s.out / "search.md").write_text("\n".join(lines))


def unfinished(results, path: Path | None = None) -> int:
    """Trials not terminated or errored. After a Ctrl-C, Ray Tune returns the trials it
    stopped as terminated, with truncated scores, but saves them as unfinished (a resume
    runs them again): with ``path`` (the experiment's folder) the saved state decides."""
    left = len(results) - results.num_terminated - results.num_errors
    if path is not None and left == 0:
        from ray import tune

        saved = tune.Tuner.restore(str(path), trial).get_results()
        left = len(saved) - saved.num_terminated - saved.num_errors
    return left


def write_recipe(s: Search, families: dict[str, list[float]], num_classes: int
                 ) -> dict[str, Any]:
    """``<out>/recipe.json``: the runner's settings of the recipe (``--config`` loads it;
    its arm ``all``) and, under ``"compose"``, its whole training chain for the library
    (``ak.load_compose``): the recipe's augmentations, the mel frontend, the scale and
    the normalisation, as the runner builds arm ``all``."""
    rec, ablation = recipe_ablation(s.cfg, {n: (float(m), float(p))
                                            for n, (m, p) in families.items()})
    arm = build_arm(S.arm_name(rec), s.cfg.frontend, ablation, num_classes)
    try:
        compose = arm.chain.to_config()
    except ValueError as e:  # a step JSON cannot hold (a recorded bank): the runner form only
        warnings.warn(f"recipe.json: no library chain ({e})", stacklevel=2)
        compose = None
    out = {"_doc": "python -m experiments.ablate --config this file (arm all is the recipe); "
                   "in your own loop: augkit.load_compose(this file)", **rec}
    if compose is not None:
        out["compose"] = compose
    atomic_write_json(s.out / "recipe.json", out)
    return rec


def seeds_of(s: Search) -> dict[str, Any]:
    """The seeds of every stage (disjoint): trials, re-ranking, confirmation."""
    return {"trial": TRIAL_SEED,
            "rerank": tuple(RERANK_SEEDS[0] + i for i in range(s.rerank_seeds)),
            "confirm": tuple(CONFIRM_SEEDS[0] + i for i in range(s.confirm_seeds))}


def search_and_rerank(s: Search, t0: float) -> tuple[dict[str, Any], list | None]:
    """The search, then the re-ranking of its best recipes, in one Ray session; the
    search's summary (``chosen``: the recipe kept) and the re-ranked candidates (None
    when there is nothing to re-rank)."""
    setup = prepare(s)
    with ray_session(s):
        results = fit_search(s, setup)
        left = unfinished(results, s.storage / "search")
        if left:
            raise K.Interrupted(f"{left} search trial(s) unfinished")
        rows = trials_table(results, s)
        summary = report(s, rows, time.time() - t0)
        cands = K.candidates(rows, max(1, s.rerank_top))
        reranked = None
        if len(cands) > 1 and s.rerank_seeds > 0:
            reranked = K.rerank(s, setup, cands, seeds_of(s)["rerank"])
        chosen = (reranked or cands)[0]
    summary["chosen"] = chosen["recipe"]
    summary["recipe"] = write_recipe(s, chosen["families"], setup["num_classes"])
    summary["reranked"] = reranked
    atomic_write_json(s.out / "search.json", summary)
    return summary, reranked


def main(argv: list[str] | None = None) -> int:
    try:
        s = resolve(argv)
        summary, reranked = search_and_rerank(s, time.time())
        confirmed = None
        if s.confirm:
            status, arms = K.confirm(s, summary["recipe"], seeds_of(s)["confirm"])
            if status not in (0, 1):  # 1: some run diverged, still reported
                return status
            confirmed = (status, arms)
        K.write_summary(s, summary, reranked, confirmed, seeds_of(s))
    except K.Interrupted as e:
        print(f"interrupted: {e}; run the same command to resume", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    unit, hours = next(iter(summary["compute"].items()))
    print(f"{summary['trials']} trials, {hours:.4g} {unit}; recipe: {summary['chosen']}; "
          f"{s.out / 'summary.md'}, {s.out / 'recipe.json'}")
    return 0
