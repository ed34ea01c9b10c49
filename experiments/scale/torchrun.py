"""One unit over several processes: ``torchrun --nproc-per-node K -m experiments.ablate``.

With ``WORLD_SIZE`` > 1 in the environment, :func:`init_torchrun` joins the process
group (gloo on the CPU, NCCL on CUDA, one GPU per local rank); every rank plans
(rank 0 first: it decodes and writes ``config.json``, the others then load the
cache: :func:`rank_zero_first`) and trains each unit together, data-parallel (see
:mod:`experiments.training.trainer`); only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as dist


def torchrun_rank_world() -> tuple[int, int]:
    """``(RANK, WORLD_SIZE)`` from torchrun's environment; ``(0, 1)`` without it."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def init_torchrun(device_name: str) -> torch.device:
    """Join torchrun's process group: NCCL and ``cuda:LOCAL_RANK``, or gloo on the CPU."""
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device_name.startswith("cuda") or (device_name == "auto"
                                              and torch.cuda.is_available())
    if not cuda:
        dist.init_process_group("gloo")
        return torch.device("cpu")
    n = torch.cuda.device_count()
    if n == 0:
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
    if local >= n:
        raise ValueError(f"torchrun started local rank {local}, but torch sees {n} CUDA "
                         "device(s); use --nproc-per-node <= the number of GPUs")
    device = torch.device("cuda", local)
    torch.cuda.set_device(device)
    dist.init_process_group("nccl")
    return device


def broadcast(obj):
    """Rank 0's ``obj`` on every rank."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class RankZeroError(ValueError):
    """Rank 0 failed where the other ranks wait for it (rank 0 says why)."""


@contextlib.contextmanager
def rank_zero_first(rank: int, world: int):
    """Run the block on rank 0 first, then on the other ranks; rank 0's error
    (``ValueError``/``OSError``) stops them all (:class:`RankZeroError` on the others).
    One process: just run the block."""
    if world == 1:
        yield
        return
    if rank != 0:
        err = broadcast(None)
        if err is not None:
            raise RankZeroError(err)
        yield
        return
    err = None
    try:
        yield
    except (ValueError, OSError) as e:
        err = str(e)
        raise
    finally:
        broadcast(err)


def close_torchrun() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
