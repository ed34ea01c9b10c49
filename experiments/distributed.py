"""Scale out: the grid on Ray, and one run over several processes with torchrun.

**Grid on Ray** (``--workers N``, ``--ray-address``): independent (arm, seed, fold)
units run as Ray tasks, N at a time, each reserving ``--cpus-per-run`` CPUs (also
torch's thread count in the unit) and ``--gpus-per-run`` GPUs (0.25 packs four
units per GPU). The decoded dataset is put into Ray's object store once, as numpy
arrays that workers on the same node map without copying and move to their device
once per worker process; workers need no shared filesystem. The driver is the
only writer: a task returns its :class:`~experiments.results.RunResult` (with the
history) and the first batch's examples, and the driver logs them to SwanLab and
writes the result file and the report, exactly as the sequential path does, so
resume and reports work unchanged. A task whose worker dies is retried by Ray
(``--max-retries``); its result is written once, when it returns. Ray is imported
only here, and this module only when a grid flag is given.

**torchrun** (``WORLD_SIZE`` > 1 in the environment): :func:`init_torchrun` joins
the process group (gloo on the CPU, NCCL on CUDA, one GPU per local rank); every
rank plans (rank 0 first: it decodes and writes ``config.json``) and trains each
unit together (see :mod:`experiments.train`); only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from .arms import arm_augmentations
from .config import Config
from .data import AudioSet
from .io import first_line
from .results import EpochLog, RunResult
from .train import train_run

#: Test hook: ``"<arm>-seed<k>:<marker file>"`` makes the first attempt of that unit
#: write its worker's pid to the marker after epoch 1 and wait there (to be killed).
HOLD_ENV = "AUGKIT_TEST_HOLD_UNIT"

Unit = tuple[str, int, "int | None"]


def unit_label(arm: str, seed: int, fold: int | None) -> str:
    return f"{arm}-seed{seed}" + ("" if fold is None else f"-fold{fold}")


# ---------------------------------------------------------------------------
# Grid on Ray


def grid_device(cfg: Config) -> tuple[torch.device, float]:
    """The device every unit trains on and the GPUs Ray reserves for each; checks that
    Ray is installed (without importing it)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise ValueError("--workers and --ray-address run the grid on Ray, which is not "
                         "installed: pip install 'augkit[ray]' (or ray)")
    gpus = cfg.gpus_per_run
    name = cfg.device
    if name == "auto":
        cuda = gpus != 0 and (torch.cuda.is_available() or (gpus or 0) > 0)
        name = "cuda" if cuda else "cpu"
    if name == "cpu":
        return torch.device("cpu"), 0.0
    # CUDA: Ray assigns each task its GPU (CUDA_VISIBLE_DEVICES), so no index here.
    if gpus == 0:
        raise ValueError("--device cuda on Ray needs --gpus-per-run > 0 (Ray hides the GPUs "
                         "from a unit that reserves none); e.g. --gpus-per-run 0.25")
    if not torch.cuda.is_available() and cfg.ray_address is None:
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device here "
                         "(to train on the GPUs of a cluster, join it with --ray-address)")
    return torch.device("cuda"), 1.0 if gpus is None else float(gpus)


def pack(ds: AudioSet) -> dict:
    """The dataset as numpy arrays (zero-copy in Ray's object store) and metadata."""
    arrays = {k: getattr(ds, k).cpu().numpy() for k in ("samples", "starts", "lengths", "labels")}
    meta = {k: getattr(ds, k) for k in ("ids", "classes", "sample_rate", "skipped",
                                       "manifest_splits", "digests", "notes", "ignored")}
    return {"arrays": arrays, "meta": meta}


def unpack(packed: dict) -> AudioSet:
    with warnings.catch_warnings():  # read-only shared memory: crops only read it
        warnings.simplefilter("ignore", UserWarning)
        tensors = {k: torch.from_numpy(v) for k, v in packed["arrays"].items()}
    return AudioSet(**tensors, **packed["meta"])


_DATA: dict[tuple[str, str], AudioSet] = {}  # per worker process: the grid's dataset


def _dataset(box: list, device: torch.device) -> AudioSet:
    import ray

    key = (box[0].hex(), str(device))
    if key not in _DATA:
        _DATA.clear()
        _DATA[key] = unpack(ray.get(box[0])).to(device)
    return _DATA[key]


def _hold_hook(arm: str, seed: int, fold: int | None) -> Callable[[EpochLog], None] | None:
    spec = os.environ.get(HOLD_ENV, "")
    unit, _, marker = spec.partition(":")
    if not marker or unit != unit_label(arm, seed, fold) or os.path.exists(marker):
        return None

    def hold(log: EpochLog) -> None:
        if log.epoch == 1 and not os.path.exists(marker):
            tmp = f"{marker}.{os.getpid()}.tmp"
            Path(tmp).write_text(str(os.getpid()))
            os.replace(tmp, marker)
            time.sleep(300)

    return hold


def unit_task(cfg: Config, arm: str, seed: int, fold: int | None, box: list,
              split: dict[str, torch.Tensor], device: torch.device, threads: int,
              n_examples: int) -> tuple[RunResult, tuple[torch.Tensor, torch.Tensor] | None]:
    """One unit in a Ray worker: its result and the first batch's examples (on the CPU)."""
    t0 = time.time()
    torch.set_num_threads(threads)
    data = _dataset(box, device)
    split = {k: v.to(device) for k, v in split.items()}
    examples = []

    def on_examples(waves: torch.Tensor, feats: torch.Tensor) -> None:
        if n_examples:
            examples.append((waves[:n_examples].cpu(), feats[:n_examples].cpu()))

    r = train_run(cfg, arm, arm_augmentations(arm, cfg.augmentations), seed, fold, data, split,
                  _hold_hook(arm, seed, fold), on_examples)
    r.wall_s = time.time() - t0
    r.extra["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return r, (examples[0] if examples else None)


def run_grid(cfg: Config, data: AudioSet, splits: dict, todo: list[Unit],
             device: torch.device, gpus: float, threads: int, progress: bool,
             record: Callable[[Unit, RunResult, tuple | None], None]) -> list[str]:
    """Run ``todo`` on Ray and call ``record`` in the driver as each unit returns.

    Starts a local Ray runtime (or joins ``cfg.ray_address``) and shuts it down at
    the end. Returns one line per unit that did not finish (its task raised, or its
    worker died more than ``cfg.max_retries`` times); those are not recorded, and
    the same command runs them again.
    """
    from tqdm.auto import tqdm

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    started = not ray.is_initialized()
    if started:
        quiet = dict(log_to_driver=False, logging_level=logging.ERROR)
        if cfg.ray_address:
            ray.init(address=cfg.ray_address, **quiet)
        else:  # N units at a time locally, even where that oversubscribes the cores
            ray.init(num_cpus=max(os.cpu_count() or 1, cfg.workers * threads),
                     include_dashboard=False, **quiet)
    pending: dict = {}
    problems: list[str] = []
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=not progress, position=0)
    try:
        box = [ray.put(pack(data))]  # once; in a list so that tasks get the reference
        task = ray.remote(unit_task).options(num_cpus=threads, num_gpus=gpus,
                                             max_retries=cfg.max_retries,
                                             retry_exceptions=False)
        n_examples = cfg.log_examples if cfg.swanlab_mode != "disabled" else 0
        queue = list(todo)
        limit = cfg.workers or len(queue)
        while queue or pending:
            while queue and len(pending) < limit:
                arm, seed, fold = unit = queue.pop(0)
                split = {k: v.cpu() for k, v in splits[fold].items()}
                pending[task.remote(cfg, arm, seed, fold, box, split, device, threads,
                                    n_examples)] = unit
            bar.set_postfix_str(f"{len(pending)} running")
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            unit = pending.pop(ref)
            try:
                r, examples = ray.get(ref)
            except ray.exceptions.RayTaskError as e:
                cause = getattr(e, "cause", None) or e
                problems.append(f"{unit_label(*unit)}: {type(cause).__name__}: "
                                f"{first_line(cause)}")
            except ray.exceptions.RayError as e:
                problems.append(f"{unit_label(*unit)}: lost ({type(e).__name__}) after "
                                f"{cfg.max_retries} retries")
            else:
                record(unit, r, examples)
            bar.update(1)
    finally:
        bar.close()
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
    return problems


# ---------------------------------------------------------------------------
# torchrun


def torchrun_rank_world() -> tuple[int, int]:
    """``(RANK, WORLD_SIZE)`` from torchrun's environment; ``(0, 1)`` without it."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def init_torchrun(device_name: str) -> torch.device:
    """Join torchrun's process group: NCCL and ``cuda:LOCAL_RANK``, or gloo on the CPU."""
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device_name.startswith("cuda") or (device_name == "auto"
                                              and torch.cuda.is_available())
    if cuda:
        n = torch.cuda.device_count()
        if n == 0:
            raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
        if local >= n:
            raise ValueError(f"torchrun started local rank {local}, but torch sees {n} CUDA "
                             "device(s); use --nproc-per-node <= the number of GPUs")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl")
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return device


def broadcast(obj):
    """Rank 0's ``obj`` on every rank."""
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def close_torchrun() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


__all__ = ["HOLD_ENV", "broadcast", "close_torchrun", "grid_device", "init_torchrun", "pack",
           "run_grid", "torchrun_rank_world", "unit_label", "unit_task", "unpack"]
