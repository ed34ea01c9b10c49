"""Ablate augmentations: every arm x seed (x fold), with resume, plots and SwanLab.

    python -m experiments.ablate                       # quick preset, embedded synthetic data
    python -m experiments.ablate --preset augkit --data /path/to/genres_original --device cuda
    python -m experiments.ablate --arms baseline,time_mask,all --seeds 0,1,2 --set lr=1e-3
    python -m experiments.ablate --arms loo --seeds 0,1,2,3,4 --workers 8 --gpus-per-run 0.25
    torchrun --nproc-per-node 4 -m experiments.ablate --arms all --seeds 0 --device cuda

Outputs go to ``--out`` (default ``runs/<preset>``): config.json, dataset.json,
runs/<arm>/seed<k>.json, results.csv, summary.md and PNG plots. Re-running with the
same ``--out`` skips the (arm, seed) pairs already done; a folder whose finished runs
used other settings or other data is refused, never mixed, and a folder another
command is using (its ``.lock``) is refused at once. Everything is checked before
any audio is decoded and before anything but the lock is written into ``--out``; a
bad input is one line on stderr and exit status 2. Ctrl-C stops with one line and
exit status 130, SIGTERM with one line and 143 (the SwanLab run marked aborted); a
full disk is one line naming the file (exit status 1); runs whose loss diverged are
recorded as failed (exit status 1).
``--workers``/``--ray-address`` run the pairs on Ray, torchrun runs each pair
data-parallel (experiments/scale/, and the documentation's "Scale out").

Every flag is a config field (experiments/config.py); --set KEY=VALUE sets any other,
e.g. --set n_mels=40, or one augmentation's argument: --set augment.noise.snr_db=[5,30].
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
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import config as C
from .arms import expand_arms, features_for_display
from .data.splits import SPLIT_KINDS
from .exit import exit_with
from .io import atomic_write_json, no_room
from .lock import OutLock
from .plan import (
    Plan,
    check_outside_data,
    check_paths,
    fold_list,
    plan,
    read_finished,
    run_file,
    write_config,
)
from .reporting.summary import write_report
from .reporting.tracking import Tracker
from .scale.ray_grid import grid_device, run_grid
from .scale.torchrun import (
    RankZeroError,
    broadcast,
    close_torchrun,
    init_torchrun,
    rank_zero_first,
    torchrun_rank_world,
)
from .training.results import EpochLog, RunResult, unit_label
from .training.trainer import train_run

#: Options of this command that are not config fields.
COMMAND_OPTIONS = ("preset", "config", "set", "retry_failed", "no_progress")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (no usage block), exit status 2."""

    def error(self, message: str):
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _comma_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _comma_ints(text: str) -> list[int]:
    try:
        return [int(v) for v in _comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a comma list of integers, got {text!r}"
                                         ) from None


def _parser() -> _Parser:
    """The command line. A config flag is stored under its field's name, and only when
    given (``argument_default=SUPPRESS``), so the flags given are the overrides."""
    p = _Parser(prog="python -m experiments.ablate", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter,
                argument_default=argparse.SUPPRESS)
    p.add_argument("--preset", default="quick", choices=C.PRESETS,
                   help="base settings from experiments/configs/<preset>.json (default: quick)")
    p.add_argument("--config", default=None,
                   help="a JSON file of overrides, applied after the preset")
    p.add_argument("--data", help="GTZAN genres_original (or genres/*.au), a folder-per-class "
                   "dataset, or a CSV manifest (path,label[,split]); default: embedded "
                   "synthetic set")
    p.add_argument("--out", help="output folder (default: runs/<preset>)")
    p.add_argument("--arms", type=_comma_list, help="comma list: baseline, <aug>, all, "
                   "all-minus-<aug>, a+b, norm:<mode>, alone, loo, norms, default")
    p.add_argument("--seeds", type=_comma_ints, help="comma list of seeds, e.g. 0,1,2")
    p.add_argument("--split", choices=SPLIT_KINDS,
                   help="auto: the data's split column when it has one (a manifest's, the "
                        "synthetic set's), else holdout")
    p.add_argument("--folds", type=int, help="k for --split kfold")
    p.add_argument("--fold", help="fold index for --split kfold, or 'all'")
    p.add_argument("--normalize", help="level normalisation of every arm's input (the "
                   "baseline's too): none, max, standardize, freq or lufs")
    p.add_argument("--protocol", choices=C.PROTOCOLS,
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
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--swanlab-mode", choices=("cloud", "local", "offline", "disabled"),
                   help="cloud, local, offline or disabled (default: local; no account needed)")
    p.add_argument("--cache-dir", help="where decoded audio and the synthetic set are cached "
                   "(default: $XDG_CACHE_HOME/augkit, else ~/.cache/augkit)")
    p.add_argument("--noise-dir", help="a folder of noise recordings for the background_noise "
                   "arm (default: a generated bank)")
    p.add_argument("--ir-dir", help="a folder of room impulse responses for the reverb arm "
                   "(default: generated rooms)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, e.g. --set augment.time_mask.max_width=30 "
                        "or --set n_mels=40")
    p.add_argument("--allow-missing-classes", action="store_true",
                   help="run even when a class has no clip in train or in an evaluated split "
                   "(warned; otherwise an error)")
    p.add_argument("--strict-duplicates", action="store_true",
                   help="refuse data holding the same audio in two splits or under two labels "
                   "(default: a warning naming the clips)")
    p.add_argument("--retry-failed", action="store_true", default=False,
                   help="run again the pairs whose training diverged (status failed)")
    p.add_argument("--no-progress", action="store_true", default=False,
                   help="no progress bars")
    g = p.add_argument_group("scale out (docs: Scale out)")
    g.add_argument("--workers", type=int, help="run N pairs at a time on a local Ray runtime "
                   "(pip install augkit[ray]); default: one after another, no Ray")
    g.add_argument("--ray-address", help="join an existing Ray cluster: auto or HOST:PORT")
    g.add_argument("--gpus-per-run", type=float, help="GPUs Ray reserves per pair (0.25 packs "
                   "four per GPU; default 1 on CUDA, 0 on the CPU)")
    g.add_argument("--cpus-per-run", type=int, help="torch threads per pair (and CPUs Ray "
                   "reserves for it); default: torch's own count, 1 on Ray")
    g.add_argument("--max-retries", type=int, help="times Ray runs a pair again when its "
                   "worker dies (default 3)")
    return p


def parse_args(argv=None) -> tuple[argparse.Namespace, dict]:
    """``(the command's own options, the config overrides)`` from the command line.

    The overrides are the config flags given, then the ``--set`` pairs; ``--epochs N``
    alone means a fixed budget, ``--max-epochs N`` alone the converge protocol.
    """
    p = _parser()
    args = p.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k not in COMMAND_OPTIONS}
    if "protocol" not in overrides and {"epochs", "max_epochs"} <= set(overrides):
        p.error("--epochs (a fixed budget) and --max-epochs (the cap of the converge "
                "protocol) do not combine; give one, or --protocol")
    if "protocol" not in overrides and {"epochs", "max_epochs"} & set(overrides):
        overrides["protocol"] = "fixed" if "epochs" in overrides else "converge"
    for item in args.set:
        if "=" not in item:
            p.error(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip()] = value
    return args, overrides


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)


def placement(cfg: C.Config, world: int) -> tuple[torch.device, torch.device, float | None]:
    """``(where the data is loaded, where units train, GPUs per unit on Ray or None)``:
    one process, torchrun's ranks (``world`` > 1), or a Ray grid. Sets torch's threads
    here to ``--cpus-per-run`` (a Ray unit sets its own)."""
    rt, scale = cfg.runtime, cfg.scale
    if world > 1 and scale.on_ray:
        raise ValueError("torchrun (one pair over several processes) and --workers/"
                         "--ray-address (several pairs at a time) do not combine; use one")
    if world > 1:
        device = init_torchrun(rt.device)
    elif scale.on_ray:
        units, gpus = grid_device(scale, rt.device)
        return torch.device("cpu"), units, gpus
    else:
        device = pick_device(rt.device)
    if scale.cpus_per_run:
        torch.set_num_threads(scale.cpus_per_run)
    return device, device, None


# ---------------------------------------------------------------------------
# One unit: SwanLab, the result file


def open_tracker(p: Plan, arm: str, seed: int, fold: int | None) -> Tracker:
    """The SwanLab run of one (arm, seed, fold)."""
    rt = p.cfg.runtime
    return Tracker(rt.swanlab_mode, rt.swanlab_project, p.out / "swanlog",
                   unit_label(arm, seed, fold), arm, [arm, rt.preset, f"seed{seed}"],
                   {**C.to_dict(p.cfg), "arm": arm, "seed": seed, "fold": fold,
                    "arm_augmentations": p.arms[arm].augmentations})


def log_examples(p: Plan, tracker: Tracker, arm: str, waves, clean, augmented) -> None:
    """The first batch's examples, clean and augmented, in the units they are in."""
    n = p.cfg.runtime.log_examples
    scale, normalize = p.cfg.frontend.scale, p.arms[arm].normalize
    clean, units = features_for_display(clean[:n], scale, normalize)
    augmented, _ = features_for_display(augmented[:n], scale, normalize)
    tracker.log_examples(waves[:n], clean, augmented, units, p.data.sample_rate)


def record_unit(p: Plan, tracker: Tracker, r: RunResult) -> None:
    """End the unit's SwanLab run (its test scores, once, and its confusion matrix) and
    write its result atomically: the one place a result is written, whichever path
    trained it."""
    if r.ok:
        step = len(r.history)
        if r.test is not None:
            tracker.log({f"test/{k}": getattr(r.test, k) for k in ("acc", "acc_centre", "f1",
                                                                   "loss")}, step=step)
        split = "test" if r.test is not None else "val"
        tracker.log_confusion(f"{split}/confusion", r.primary.confusion, p.data.classes,
                              f"{unit_label(r.arm, r.seed, r.fold)}: {split}", step=step)
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
            log_examples(p, tracker, r.arm, *examples)
        for log in r.history:
            tracker.log(log.scalars(), step=log.epoch)
    except BaseException as e:
        tracker.abort(stop_reason(e))
        raise
    record_unit(p, tracker, r)


def run_unit(p: Plan, arm: str, seed: int, fold: int | None, progress: bool,
             write: bool = True) -> RunResult:
    """Train one (arm, seed, fold) with SwanLab logging and write its result atomically.

    ``write=False`` (torchrun's ranks other than 0): train only, log and write nothing.
    """
    if not write:
        return train_run(p.arms[arm], p.recipe, seed, fold, p.data, p.splits[fold])
    t0 = time.time()
    tracker = open_tracker(p, arm, seed, fold)
    optim = p.cfg.optim
    bar = tqdm(total=optim.epochs if optim.protocol == "fixed" else optim.max_epochs,
               desc="  epochs", unit="ep", leave=False, disable=not progress, position=1)

    def on_epoch(log: EpochLog) -> None:
        tracker.log(log.scalars(), step=log.epoch)
        bar.set_postfix(loss=f"{log.train_loss:.3f}", val=f"{log.val_acc:.3f}")
        bar.update(1)

    def on_examples(waves, clean, augmented) -> None:
        log_examples(p, tracker, arm, waves, clean, augmented)

    try:
        r = train_run(p.arms[arm], p.recipe, seed, fold, p.data, p.splits[fold], on_epoch,
                      on_examples)
    except BaseException as e:  # Ctrl-C, SIGTERM or an error: the tracker's run is aborted
        tracker.abort(stop_reason(e))
        raise
    finally:
        bar.close()
    r.wall_s = time.time() - t0
    record_unit(p, tracker, r)
    return r


# ---------------------------------------------------------------------------
# The command


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


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's cancel, ``kill``): stops the command as Ctrl-C does, so that
    the unit's SwanLab run is marked aborted, then exit status 143."""


def stop_reason(e: BaseException) -> str:
    """Why a unit stopped, for its SwanLab run."""
    if isinstance(e, Terminated):
        return "terminated (SIGTERM)"
    return "interrupted" if isinstance(e, KeyboardInterrupt) else repr(e)


@contextlib.contextmanager
def sigterm_stops():
    """SIGTERM raises :class:`Terminated` in the main thread while the command runs (the
    previous handler is restored afterwards); elsewhere it is left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def interrupted(state: dict):
    """Ctrl-C or SIGTERM: one line (how many pairs are done), the exception swallowed,
    ``state["rc"]`` 130 or 143; on the way out, torch's threads as they were, the
    results folder's lock released and torchrun's process group closed."""
    threads = torch.get_num_threads()  # --cpus-per-run changes it for this command only
    try:
        yield
    except KeyboardInterrupt as e:
        word = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        state["rc"] = 143 if isinstance(e, Terminated) else 130
        units, out = state.get("units"), state.get("out")
        if units is None:
            print(f"{word} before any pair started; re-run the same command to start",
                  file=sys.stderr)
        else:
            done = read_finished(out)
            print(f"{word}; {sum(u in done for u in units)} of {len(units)} pairs done; "
                  "re-run the same command to resume", file=sys.stderr)
    finally:
        torch.set_num_threads(threads)
        if state.get("lock") is not None:
            state.pop("lock").release()
        close_torchrun()


def lock_out(cfg: C.Config, argv: list[str] | None) -> OutLock:
    """Check ``--out`` and ``--cache-dir`` (writable, outside ``--data``), then lock
    ``--out`` for this command (:class:`experiments.lock.OutLock`); a one-line ValueError
    when another holds it."""
    check_paths(cfg.runtime)
    if cfg.data.path is not None:
        check_outside_data(cfg.runtime, Path(cfg.data.path).expanduser())
    command = " ".join(["python -m experiments.ablate", *(sys.argv[1:] if argv is None
                                                          else argv)])
    return OutLock(Path(cfg.runtime.out)).acquire(command)


def main(argv=None) -> int:
    try:
        args, overrides = parse_args(argv)
    except SystemExit as e:  # --help (0) or a bad option (2, already printed)
        return e.code if isinstance(e.code, int) else 2
    rank, world = torchrun_rank_world()
    progress = not args.no_progress and rank == 0
    state: dict = {}
    with cli_warnings(), sigterm_stops(), interrupted(state):
        try:
            cfg = C.resolve(args.preset, args.config, overrides)
            if cfg.runtime.out is None:
                cfg.runtime.out = f"runs/{cfg.runtime.preset}"
            state["out"] = Path(cfg.runtime.out)
            state["units"] = [(a, s, f) for a in expand_arms(cfg.runtime.arms,
                                                             cfg.ablation.augmentations)
                              for s in cfg.runtime.seeds
                              for f in fold_list(cfg.data, cfg.runtime.fold)]
            data_device, unit_device, gpus = placement(cfg, world)
            with rank_zero_first(rank, world):
                if rank == 0:  # the driver: the one process that reads and writes --out
                    state["lock"] = lock_out(cfg, argv)
                p = plan(cfg, data_device, progress, args.retry_failed)
                p.unit_device = unit_device
                if rank == 0:
                    write_config(p, argv)
        except (ValueError, OSError) as e:
            if rank == 0:
                print(f"error: {e}", file=sys.stderr)
            elif not isinstance(e, RankZeroError):  # rank 0 planned fine: say it here
                print(f"error: rank {rank}: {e}", file=sys.stderr)
            return 2
        try:
            return run(p, gpus, progress, rank, world)
        except OSError as e:  # a full disk, a file-size limit: one line naming the file
            room = "free some space and " if no_room(e) else ""
            print(f"error: {e}; the finished pairs are kept: {room}re-run the same command to "
                  "resume", file=sys.stderr)
            return 1
    return state.get("rc", 130)


def run(p: Plan, gpus: float | None, progress: bool, rank: int = 0, world: int = 1) -> int:
    """Run the plan's units that are not done (on Ray when ``gpus`` is given), write the
    report after each, print the summary; the exit status."""
    lead = rank == 0  # the only process that writes and prints (torchrun: rank 0)
    finished = p.finished()
    todo = p.todo(finished)
    if world > 1:  # rank 0's view of the folder is the plan of every rank
        todo = broadcast(todo)
    cfg = p.cfg
    if lead:
        how = (f" on {world} processes" if world > 1 else
               f", {cfg.scale.workers or 'as many as fit'} at a time on Ray" if gpus is not None
               else "")
        print(f"augkit ablation: {len(p.arms)} arms x {len(cfg.runtime.seeds)} seeds"
              + (f" x {len(p.folds)} folds" if p.folds != [None] else "")
              + f" on {p.device}{how}; {len(p.data)} clips, {len(p.data.classes)} classes, "
              f"split {p.split_name} {p.split_sizes}; "
              f"{sum(u in finished for u in p.units)} done, {len(todo)} to run -> {p.out}",
              flush=True)
    order = p.arm_order(finished)

    def report(plots: bool = False) -> None:
        write_report(p.out, list(finished.values()), order, p.data.classes,
                     f"augkit ablation: {p.out.name}", p.context, plots=plots,
                     cancelled=p.cancelled)

    def record(unit, r: RunResult, examples) -> None:
        record_returned(p, r, examples)
        finished[unit] = r
        report()

    problems: list[str] = []
    if gpus is not None and todo:  # nothing to run: no Ray runtime to start
        examples = cfg.runtime.log_examples if cfg.runtime.swanlab_mode != "disabled" else 0
        problems = run_grid(cfg.scale, p.arms, p.recipe, p.data, p.splits, todo, p.device,
                            gpus, cfg.scale.cpus_per_run or 1, examples, progress, record)
    elif gpus is None:
        bar = tqdm(todo, desc="runs", unit="run", disable=not progress, position=0)
        for arm, seed, fold in bar:
            bar.set_postfix_str(f"{arm} seed {seed}" + ("" if fold is None else f" fold {fold}"))
            finished[(arm, seed, fold)] = run_unit(p, arm, seed, fold, progress, write=lead)
            if lead:
                report()
        bar.close()
    if not lead:
        return 0
    if finished:
        report(plots=True)
    return summarize(p, list(finished.values()), problems)


def summarize(p: Plan, results: list[RunResult], problems: list[str]) -> int:
    """Print the summary, where everything is, and what did not go well; the exit status."""
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    if not results:
        print("nothing to report", file=sys.stderr)
        return 1
    print()
    print((p.out / "summary.md").read_text())
    plots = [str(p.out / f) for f in ("curves.png", "deltas.png", "confusion.png")
             if (p.out / f).exists()]
    print(f"{len(results)} runs; results: {p.out / 'results.csv'}, {p.out / 'summary.md'}"
          + (f", plots: {', '.join(plots)}" if plots else ""))
    mode = p.cfg.runtime.swanlab_mode
    if mode != "disabled":
        print(f"SwanLab ({mode}) runs in {p.out / 'swanlog'}"
              + (f"; dashboard: swanlab watch {p.out / 'swanlog'}" if mode == "local" else ""))
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
    exit_with(main())
