"""Typed results: one :class:`RunResult` per finished (arm, seed, fold).

Stored as ``runs/<arm>/seed<k>[-fold<i>].json`` (:meth:`RunResult.to_dict`) and
read back with :meth:`RunResult.from_dict`; the report works on these objects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: Every finished run has exactly one of these.
STATUSES = ("ok", "failed")


def unit_label(arm: str, seed: int, fold: int | None) -> str:
    """A unit's name: ``"<arm>-seed<k>[-fold<i>]"`` (SwanLab runs, messages)."""
    return f"{arm}-seed{seed}" + ("" if fold is None else f"-fold{fold}")


@dataclass
class Metrics:
    """Scores of one split at one epoch (multi-crop unless named ``centre``)."""

    loss: float
    acc: float
    acc_centre: float
    f1: float
    confusion: list[list[int]]


@dataclass
class EpochLog:
    """One epoch's training and validation scalars (the curves)."""

    epoch: int
    train_loss: float
    train_acc: float
    lr: float
    clips_per_s: float
    val_loss: float
    val_acc: float
    val_acc_centre: float
    val_f1: float

    def scalars(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclass
class RunResult:
    """Everything one (arm, seed, fold) run produced.

    ``val`` and ``test`` are at the epoch selected on validation; ``final_*`` at
    the last epoch. ``test`` is ``None`` when the split has no test set. Test is read
    once, at the selected epoch: ``final_test_acc`` is ``None`` (results written by
    augkit 0.2 also read test at the last epoch there).

    ``normalize`` is the run's level normalisation; ``protocol`` ``"converge"`` or
    ``"fixed"``; ``stop`` why training ended: ``"patience"`` (converged: validation
    stopped improving), ``"cap"`` (the converge protocol's ``max_epochs`` came first:
    not converged), ``"budget"`` (the fixed protocol's epochs) or ``"diverged"``.

    ``status`` is exactly ``"ok"`` or ``"failed"``. A failed run (training diverged:
    a non-finite loss) has ``val = test = None``, ``selected_epoch = 0``, the
    history up to the failure and the reason in ``error``; reports exclude it from
    every mean and list it as failed. Files written before ``status`` existed read
    back as ``"ok"``.
    """

    arm: str
    seed: int
    fold: int | None
    augmentations: list[str]
    selected_epoch: int
    val: Metrics | None
    test: Metrics | None
    history: list[EpochLog]
    final_train_acc: float
    final_train_loss: float
    final_val_acc: float
    final_val_f1: float
    final_test_acc: float | None
    time_s: float
    train_clips_per_s: float
    params: int
    #: Seconds from the unit's start to its result (setup, training, evaluation).
    wall_s: float = 0.0
    #: Where it ran: ``"cpu"`` or ``"cuda:0 (<GPU name>)"``; and torch's CPU threads.
    device: str = ""
    threads: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    normalize: str = "none"
    protocol: str = "fixed"
    stop: str = "budget"
    status: str = "ok"
    error: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"RunResult.status must be one of {STATUSES}, got {self.status!r}")
        if self.status == "ok" and self.val is None:
            raise ValueError("a RunResult with status 'ok' needs val metrics")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def converged(self) -> bool | None:
        """``True``: stopped by patience; ``False``: by the cap; ``None``: fixed protocol."""
        return {"patience": True, "cap": False}.get(self.stop)

    @property
    def primary(self) -> Metrics | None:
        """The split a report ranks by: test when there is one, else validation."""
        return self.test if self.test is not None else self.val

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        d = dict(d)
        d.setdefault("status", "ok")
        d["val"] = None if d.get("val") is None else Metrics(**d["val"])
        d["test"] = None if d.get("test") is None else Metrics(**d["test"])
        d["history"] = [EpochLog(**h) for h in d["history"]]
        return cls(**d)
