"""Scale out: the grid of (arm, seed, fold) units on Ray.

**Grid on Ray** (``--workers N``, ``--ray-address``): independent units run as Ray
tasks, N at a time, each reserving ``--cpus-per-run`` CPUs (also torch's thread
count in the unit) and ``--gpus-per-run`` GPUs (0.25 packs four units per GPU).
The decoded dataset is put into Ray's object store once, as numpy arrays that
workers on the same node map without copying and move to their device once per
worker process; workers need no shared filesystem. Each arm, built once
(:class:`~experiments.arms.Arm`: its chain and banks), is put there once too; a task
gets its arm and the run's :class:`~experiments.training.trainer.Recipe`. The driver
is the only writer: a task returns its :class:`~experiments.training.results.RunResult` (with the
history) and the first batch's examples, and the driver logs them to SwanLab and
writes the result file and the report, exactly as the sequential path does, so
resume and reports work unchanged. A task whose worker dies is retried by Ray
(``--max-retries``); its result is written once, when it returns.

``ray`` is imported inside the functions that use it: it is an optional dependency
(``pip install augkit[ray]``), and the sequential path never loads it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..arms import Arm
from ..config import ScaleConfig
from ..data.audioset import AudioSet
from ..io import first_line
from ..training.results import EpochLog, RunResult, unit_label
from ..training.trainer import Recipe, train_run

#: Test hook: ``"<arm>-seed<k>:<marker file>"`` makes the first attempt of that unit
#: write its worker's pid to the marker after epoch 1 and wait there (to be killed).
HOLD_ENV = "AUGKIT_TEST_HOLD_UNIT"

Unit = tuple[str, int, "int | None"]
#: A unit's first-batch examples: raw crops, clean and augmented model input (CPU).
Examples = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


#: Seconds :func:`probe_ray_address` waits for the cluster's GCS port to answer.
PROBE_TIMEOUT_S = 3.0
#: The file a running local Ray cluster writes its address into (``ray start``).
RAY_CURRENT_CLUSTER = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "ray_current_cluster"


def _host_port(address: str) -> tuple[str, int] | None:
    """``"ray://h:10001"`` or ``"h:6379"`` -> ``(host, port)``; ``None`` when not HOST:PORT."""
    rest = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def probe_ray_address(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Check, within ``timeout`` seconds and before any work, that something listens at
    ``--ray-address`` (``auto``: ``$RAY_ADDRESS``, else the local cluster ``ray start``
    recorded). Ray's own client retries a dead address for minutes. Raises a one-line
    ValueError."""
    given = address
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "").strip()
        if not address and RAY_CURRENT_CLUSTER.is_file():
            address = RAY_CURRENT_CLUSTER.read_text().strip()
        if not address:
            raise ValueError("--ray-address auto: found no running Ray cluster (no "
                             "RAY_ADDRESS, and `ray start` has not recorded one here); start "
                             "one with `ray start --head`, give HOST:PORT, or use --workers N "
                             "for a local Ray runtime")
    hp = _host_port(address)
    if hp is None:
        raise ValueError(f"--ray-address must be auto or HOST:PORT (e.g. 10.0.0.5:6379), got "
                         f"{given!r}")
    try:
        with socket.create_connection(hp, timeout=timeout):
            pass
    except OSError as e:
        why = "no answer" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise ValueError(f"--ray-address {given}: nothing answers at {hp[0]}:{hp[1]} "
                         f"({why}, {timeout:g} s); is the cluster's head running "
                         "(`ray status`)? Nothing was run") from None


def grid_device(scale: ScaleConfig, device: str) -> tuple[torch.device, float]:
    """The device every unit trains on (``device``: the runtime's ``auto``, ``cpu`` or
    ``cuda``) and the GPUs Ray reserves for each; checks that Ray is installed (without
    importing it) and that ``--ray-address`` answers (:func:`probe_ray_address`)."""
    if importlib.util.find_spec("ray") is None:
        raise ValueError("--workers and --ray-address run the grid on Ray, which is not "
                         "installed: pip install 'augkit[ray]' (or ray)")
    if scale.ray_address is not None:
        probe_ray_address(scale.ray_address)
    gpus = scale.gpus_per_run
    name = device
    if name == "auto":
        if (gpus or 0) > 0 and not torch.cuda.is_available() and scale.ray_address is None:
            raise ValueError(f"--gpus-per-run {gpus:g} reserves GPUs, but torch sees no CUDA "
                             "device here; use --gpus-per-run 0 to run the grid on the CPU "
                             "(or join a cluster with GPUs with --ray-address)")
        cuda = gpus != 0 and (torch.cuda.is_available() or (gpus or 0) > 0)
        name = "cuda" if cuda else "cpu"
    if name == "cpu":
        return torch.device("cpu"), 0.0
    # CUDA: Ray assigns each task its GPU (CUDA_VISIBLE_DEVICES), so no index here.
    if gpus == 0:
        raise ValueError("--device cuda on Ray needs --gpus-per-run > 0 (Ray hides the GPUs "
                         "from a unit that reserves none); e.g. --gpus-per-run 0.25")
    if not torch.cuda.is_available() and scale.ray_address is None:
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


def unit_task(arm: Arm, recipe: Recipe, seed: int, fold: int | None, box: list,
              split: dict[str, torch.Tensor], device: torch.device, threads: int,
              n_examples: int) -> tuple[RunResult, Examples | None]:
    """One unit in a Ray worker: its result and the first batch's examples (on the CPU)."""
    t0 = time.time()
    torch.set_num_threads(threads)
    data = _dataset(box, device)
    split = {k: v.to(device) for k, v in split.items()}
    examples = []

    def on_examples(*batch: torch.Tensor) -> None:
        if n_examples:
            examples.append(tuple(x[:n_examples].cpu() for x in batch))

    r = train_run(arm, recipe, seed, fold, data, split, _hold_hook(arm.name, seed, fold),
                  on_examples)
    r.wall_s = time.time() - t0
    r.extra["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return r, (examples[0] if examples else None)


def run_grid(scale: ScaleConfig, arms: dict[str, Arm], recipe: Recipe, data: AudioSet,
             splits: dict, todo: list[Unit], device: torch.device, gpus: float, threads: int,
             n_examples: int, progress: bool,
             record: Callable[[Unit, RunResult, Examples | None], None]) -> list[str]:
    """Run ``todo`` on Ray and call ``record`` in the driver as each unit returns.

    Starts a local Ray runtime (or joins ``scale.ray_address``) and shuts it down at the
    end. Returns one line per unit that did not finish (its task raised, or its worker
    died more than ``scale.max_retries`` times); those are not recorded, and the same
    command runs them again.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    started = not ray.is_initialized()
    if started:
        quiet = dict(log_to_driver=False, logging_level=logging.ERROR)
        if scale.ray_address:
            ray.init(address=scale.ray_address, **quiet)
        else:  # N units at a time locally, even where that oversubscribes the cores
            ray.init(num_cpus=max(os.cpu_count() or 1, scale.workers * threads),
                     include_dashboard=False, **quiet)
    pending: dict = {}
    problems: list[str] = []
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=not progress, position=0)
    try:
        box = [ray.put(pack(data))]  # once; in a list so that tasks get the reference
        built = {name: ray.put(arms[name]) for name in dict.fromkeys(u[0] for u in todo)}
        task = ray.remote(unit_task).options(num_cpus=threads, num_gpus=gpus,
                                             max_retries=scale.max_retries,
                                             retry_exceptions=False)
        queue = list(todo)
        limit = scale.workers or len(queue)
        while queue or pending:
            while queue and len(pending) < limit:
                arm, seed, fold = unit = queue.pop(0)
                split = {k: v.cpu() for k, v in splits[fold].items()}
                pending[task.remote(built[arm], recipe, seed, fold, box, split, device, threads,
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
                                f"{scale.max_retries} retries")
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
