"""The optimiser and how long an arm trains: the ``optim`` config group at work.

How long a run trains is ``optim.protocol``: ``"fixed"`` trains ``epochs`` epochs on
``schedule`` (:func:`lr_lambda`); ``"converge"`` (:class:`Convergence`) warms up,
holds the learning rate until validation stops improving (or the cap comes near),
then decays it linearly to 0, so that every arm ends fully decayed, each after as
many epochs as it needed. :func:`build_optimizer` makes the optimiser and its
per-step scheduler from the group.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..config import OptimConfig


def lr_lambda(schedule: str, epochs: int, warmup_epochs: float, steps_per_epoch: int,
              step_size: int = 10, gamma: float = 0.1, warmup_start_factor: float = 0.1
              ) -> Callable[[int], float]:
    """The lr factor of optimizer step ``step`` (0-based), for ``LambdaLR``.

    ``"cosine"``: linear warmup then cosine decay, per step. ``"constant"``: 1.
    ``"step"``: per epoch, exactly what torch's ::

        SequentialLR(opt, [LinearLR(opt, start_factor=s, total_iters=W),
                           StepLR(opt, step_size, gamma)], milestones=[W])

    gives when stepped once per epoch (``s = warmup_start_factor``, ``W =
    warmup_epochs``, a whole number): epoch ``e < W`` trains at ``s + (1 - s) * e /
    W`` (``s`` at epoch 0, the full lr first at epoch ``W``), epoch ``e >= W`` at
    ``gamma ** ((e - W) // step_size)``: SequentialLR restarts StepLR at the milestone,
    so the decays count from the end of the warmup (W=5, step 10: epochs 5-14 at lr,
    15-24 at lr/10, 25-29 at lr/100). Every step of an epoch has that epoch's factor:
    the lr changes at epoch boundaries only. ``W = 0`` is StepLR alone.
    """
    total = epochs * steps_per_epoch
    warm = int(round(warmup_epochs * steps_per_epoch))
    warm_epochs = int(round(warmup_epochs))

    def f(step: int) -> float:
        if schedule == "constant":
            return 1.0
        if schedule == "step":
            epoch = step // steps_per_epoch
            if epoch < warm_epochs:
                return warmup_start_factor + (1.0 - warmup_start_factor) * epoch / warm_epochs
            return gamma ** ((epoch - warm_epochs) // step_size)
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    return f


def decay_epochs(epochs_so_far: int) -> int:
    """Epochs of the converge protocol's final linear decay: ``max(3, ceil(20%))`` of the
    epochs trained before it."""
    return max(3, math.ceil(0.2 * epochs_so_far))


def last_start(max_epochs: int) -> int:
    """The last epoch after which the decay can start and still end by ``max_epochs``."""
    e = max_epochs
    while e > 1 and e + decay_epochs(e) > max_epochs:
        e -= 1
    return e


class Convergence:
    """The ``converge`` protocol: the lr factor of each step, and when to stop.

    Linear warmup over ``warmup_epochs`` (per step), then a constant lr. After each
    epoch, the mean validation accuracy of the last 3 epochs is compared with the
    best such mean so far: a rise of at least one validation clip's worth
    (``1 / n_val``) resets the count, anything less adds one. When the count reaches
    ``patience`` (**converged**), or at epoch :func:`last_start` of ``max_epochs``
    (**cap**: not converged), the lr decays linearly to 0 over :func:`decay_epochs`
    more epochs, and the run ends there; the epoch is then selected on validation as
    in every run. Every arm thus ends fully decayed and within ``max_epochs``.

    ``factor(step)`` is the ``LambdaLR`` function; ``update(epoch, val_acc)`` returns
    whether to train another epoch. ``reason`` is ``"patience"`` or ``"cap"`` once the
    decay started, and ``decay_from`` that epoch.
    """

    def __init__(self, steps_per_epoch: int, warmup_epochs: float, max_epochs: int,
                 patience: int, n_val: int) -> None:
        self.steps, self.max_epochs, self.patience = steps_per_epoch, max_epochs, patience
        self.warm = int(round(warmup_epochs * steps_per_epoch))
        self.min_rise = 1.0 / max(1, n_val)
        self.accs: list[float] = []
        self.best = -math.inf
        self.since = 0
        self.reason: str | None = None
        self.decay_from: int | None = None
        self._decay: tuple[int, int] | None = None  # (first step, steps)
        self.end: int | None = None

    def factor(self, step: int) -> float:
        if step < self.warm:
            return (step + 1) / self.warm
        if self._decay is None:
            return 1.0
        first, n = self._decay
        return max(0.0, 1.0 - (step - first + 1) / n)

    def update(self, epoch: int, val_acc: float) -> bool:
        """Record epoch ``epoch``'s validation accuracy; ``True``: train another epoch."""
        if self.end is not None:
            return epoch < self.end
        self.accs.append(val_acc)
        if len(self.accs) >= 3:
            mean = sum(self.accs[-3:]) / 3
            if mean >= self.best + self.min_rise - 1e-9:
                self.best, self.since = mean, 0
            else:
                self.since += 1
        if self.since >= self.patience:
            self.reason = "patience"
        elif epoch >= last_start(self.max_epochs):
            self.reason = "cap"
        else:
            return True
        n = decay_epochs(epoch)
        self.decay_from, self.end = epoch, epoch + n
        self._decay = (epoch * self.steps, n * self.steps)
        return True


def build_optimizer(optim: OptimConfig, model: nn.Module, steps_per_epoch: int,
                    convergence: Convergence | None = None):
    """``(optimizer, per-step scheduler)`` from the ``optim`` group; with ``convergence``,
    its :meth:`Convergence.factor` is the schedule."""
    opt_cls = torch.optim.AdamW if optim.optimizer == "adamw" else torch.optim.Adam
    opt = opt_cls(model.parameters(), lr=optim.lr, weight_decay=optim.weight_decay)
    f = convergence.factor if convergence is not None else lr_lambda(
        optim.schedule, optim.epochs, optim.warmup_epochs, steps_per_epoch, optim.step_size,
        optim.gamma, optim.warmup_start_factor)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, f)
