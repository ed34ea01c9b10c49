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
import dataclasses
import json
import logging
import math
import os
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
from . import space as S

ROOT = Path(__file__).resolve().parents[2]
#: The seed every search trial trains with (common to all recipes).
TRIAL_SEED = 10_000
#: Seeds of the confirmation runs (fresh: never used by the search).
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
    p.add_argument("--ray-address", default=None, help="join a Ray cluster: HOST:PORT")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a runner config field, e.g. --set max_epochs=20")
    p.add_argument("--no-progress", action="store_true")
    return p


#: The search's own settings and their defaults (a search preset's "search" group).
SEARCH_DEFAULTS: dict[str, Any] = {"space": None, "budget_trials": 20, "budget_minutes": 60.0,
                                   "grace_period": 3, "search_seed": 0, "max_concurrent": None,
                                   "cpus_per_trial": 1, "gpus_per_trial": 0.0}


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


def resolve(argv: list[str] | None = None) -> Search:
    """A checked :class:`Search` from the command line; errors are one line."""
    args = _parser().parse_args(argv)
    base, settings, search = _preset(args.preset)
    unknown = set(search) - set(SEARCH_DEFAULTS)
    if unknown:
        raise ValueError(f"preset {args.preset}: unknown search settings {sorted(unknown)}")
    overrides: dict[str, Any] = dict(settings)
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
    cfg = C.resolve(base, args.config, overrides)
    if cfg.data.path is not None:
        cfg.data.path = str(Path(cfg.data.path).expanduser().resolve())
    cfg.runtime.cache_dir = str(Path(cfg.runtime.cache_dir).expanduser().resolve())
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
    if int(s["budget_trials"]) < 1 or not float(s["budget_minutes"]) > 0:
        raise ValueError("--budget-trials must be >= 1 and --budget-minutes > 0")
    if int(s["grace_period"]) < 1:
        raise ValueError(f"--grace-period must be >= 1 epoch, got {s['grace_period']}")
    cpus = int(s["cpus_per_trial"])
    if cpus < 1:
        raise ValueError(f"--cpus-per-trial must be >= 1, got {cpus}")
    concurrent = s["max_concurrent"] or max(1, (os.cpu_count() or 1) // cpus)
    out = Path(args.out or f"runs/search-{args.preset}").expanduser().resolve()
    return Search(cfg, out, families, int(s["budget_trials"]), float(s["budget_minutes"]),
                  int(s["grace_period"]), int(s["search_seed"]), int(concurrent), cpus,
                  float(s["gpus_per_trial"]), args.ray_address, not args.no_progress)


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


# ---------------------------------------------------------------------------
# One trial, in a Ray worker

_DATA: dict[int, tuple[AudioSet, dict[str, torch.Tensor]]] = {}  # per worker process


def trial(config: dict[str, Any], setup: dict[str, Any]) -> None:
    """Train the recipe of ``config`` with :data:`TRIAL_SEED`, reporting each epoch."""
    from ray import tune

    cfg: C.Config = setup["cfg"]
    torch.set_num_threads(setup["threads"])
    device = torch.device(setup["device"])
    key = id(setup["packed"])
    if key not in _DATA:
        _DATA.clear()
        ds = unpack(setup["packed"]).to(device)
        _DATA[key] = ds, {k: torch.as_tensor(v).to(device) for k, v in setup["splits"].items()}
    data, splits = _DATA[key]
    rec = S.recipe(S.families_of(config), cfg.frontend.sample_rate, cfg.ablation.augment)
    ablation = dataclasses.replace(cfg.ablation, augmentations=rec["augmentations"],
                                   augment=rec["augment"])
    arm = build_arm(S.arm_name(rec), cfg.frontend, ablation, len(data.classes))
    best = {"acc": -1.0}

    index, _, marker = os.environ.get(HOLD_ENV, "").partition(":")
    hold = bool(marker) and tune.get_context().get_trial_id().endswith(f"_{int(index):05d}")

    def on_epoch(log) -> None:
        best["acc"] = max(best["acc"], log.val_acc)
        tune.report({METRIC: log.val_acc, "best_val_acc": best["acc"],
                     "val_loss": log.val_loss, "train_acc": log.train_acc,
                     "epoch": log.epoch})
        if hold and log.epoch == 1 and not os.path.exists(marker):
            Path(marker).write_text(str(os.getpid()))
            time.sleep(300)

    r = train_run(arm, Recipe.of(cfg), TRIAL_SEED, None, data, splits, on_epoch)
    if not r.ok:
        raise RuntimeError(r.error)


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


def run_search(s: Search):
    """Run (or resume) the search; returns Ray Tune's ResultGrid."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    resumed = check_resume(s)
    data, splits = load_train_val(s.cfg, s.progress)
    s.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(s.out / STATE_FILE, s.state())
    cuda = s.gpus_per_trial > 0
    setup = {"cfg": s.cfg, "packed": pack(data), "threads": s.cpus_per_trial,
             "splits": {k: v.numpy() for k, v in splits.items()},
             "device": "cuda" if cuda else "cpu"}
    started = not ray.is_initialized()
    if started:
        quiet = dict(log_to_driver=False, logging_level=logging.ERROR)
        if s.ray_address:
            ray.init(address=s.ray_address, **quiet)
        else:
            ray.init(num_cpus=max(os.cpu_count() or 1, s.max_concurrent * s.cpus_per_trial),
                     include_dashboard=False, **quiet)
    try:
        trainable = tune.with_resources(tune.with_parameters(trial, setup=setup),
                                        {"cpu": s.cpus_per_trial, "gpu": s.gpus_per_trial})
        name = "search"
        path = str(s.storage / name)
        if resumed and tune.Tuner.can_restore(path):
            tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                       restart_errored=True)
        else:
            scheduler = ASHAScheduler(time_attr="training_iteration", max_t=s.max_epochs,
                                      grace_period=min(s.grace_period, s.max_epochs),
                                      reduction_factor=3)
            tuner = tune.Tuner(
                trainable, param_space=S.tune_space(s.families),
                tune_config=tune.TuneConfig(
                    metric=METRIC, mode="max", scheduler=scheduler,
                    search_alg=BasicVariantGenerator(random_state=s.search_seed),
                    num_samples=s.budget_trials, max_concurrent_trials=s.max_concurrent,
                    time_budget_s=s.budget_minutes * 60, reuse_actors=True,
                    trial_dirname_creator=_dirname),
                run_config=tune.RunConfig(
                    name=name, storage_path=str(s.storage), verbose=0,
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                    failure_config=tune.FailureConfig(max_failures=2),
                    callbacks=[_checkpoint_cleaner()]))
        return tuner.fit()
    finally:
        if started:
            ray.shutdown()


def trials_table(results, s: Search) -> list[dict[str, Any]]:
    """One row per trial: its recipe, best validation accuracy, epochs and time."""
    rows = []
    for r in results:
        if r.config is None:
            continue
        hist = r.metrics_dataframe
        best = float(hist["best_val_acc"].max()) if hist is not None and len(hist) else math.nan
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
    """Write ``recipe.json`` (the best trial's) and ``search.json``; return the summary."""
    done = [r for r in rows if not math.isnan(r["val_acc"])]
    if not done:
        raise RuntimeError("no trial reported a validation accuracy")
    best = max(done, key=lambda r: (r["val_acc"], -r["epochs"]))
    rec = S.recipe(S.families_of(best["config"]), s.cfg.frontend.sample_rate,
                   s.cfg.ablation.augment)
    atomic_write_json(s.out / "recipe.json", rec)
    trial_s = sum(r["seconds"] for r in rows)
    unit, per = ("GPU-hours", s.gpus_per_trial) if s.gpus_per_trial > 0 else (
        "core-hours", s.cpus_per_trial)
    summary = {"best": {k: best[k] for k in ("trial", "recipe", "val_acc", "epochs")},
               "recipe": rec, "trials": len(rows), "trial_seed": TRIAL_SEED,
               "confirm_seeds": list(CONFIRM_SEEDS), "families": s.families,
               "search_seed": s.search_seed, "compute": {unit: trial_s * per / 3600,
                                                         "wall_s": wall_s},
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
    lines = [f"# Augmentation search: {', '.join(s.families)}", "",
             f"{len(rows)} trials (random search, seed {s.search_seed}; ASHA, grace period "
             f"{s.grace_period} epochs), trial seed {TRIAL_SEED}, {hours:.3g} {unit}, "
             f"{summary['compute']['wall_s'] / 60:.1f} min wall. Selected on validation only; "
             "test has not been read.", "", "![trajectory](search_trajectory.png)", "",
             "| rank | trial | recipe | validation accuracy | epochs |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {k} | {r['trial']} | {r['recipe']} | {r['val_acc']:.3f} | {r['epochs']} |"
              for k, r in enumerate(ranked, 1)]
    lines += ["", "Confirm the best recipe on fresh seeds (reads test once):", "",
              f"    python -m experiments.ablate --config {s.out / 'recipe.json'} "
              f"--arms baseline,all --seeds {','.join(map(str, CONFIRM_SEEDS))}", ""]
    (s.out / "search.md").write_text("\n".join(lines))


def unfinished(results) -> int:
    """Trials of the search not terminated or errored (a Ctrl-C stops them)."""
    return len(results) - results.num_terminated - results.num_errors


def main(argv: list[str] | None = None) -> int:
    try:
        s = resolve(argv)
        t0 = time.time()
        results = run_search(s)
        left = unfinished(results)
        if left:
            print(f"interrupted with {left} trial(s) unfinished: run the same command to "
                  "resume", file=sys.stderr)
            return 130
        rows = trials_table(results, s)
        summary = report(s, rows, time.time() - t0)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    unit, hours = next(iter(summary["compute"].items()))
    print(f"{len(rows)} trials, {hours:.4g} {unit}; best: {summary['best']['recipe']} "
          f"(validation accuracy {summary['best']['val_acc']:.3f}); recipe: "
          f"{s.out / 'recipe.json'} (python -m experiments.ablate --config it, arm all, "
          f"--seeds {','.join(map(str, CONFIRM_SEEDS))})")
    return 0
