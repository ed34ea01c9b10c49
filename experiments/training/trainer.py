"""One (arm, seed) run: device-resident data, one augkit chain, train, evaluate.

The dataset lives on the training device (:class:`~experiments.data.audioset.AudioSet`);
a batch is an index slice of a device-side permutation, cropped per example on
the device. Evaluation averages logits over crops that cover each whole clip
(multi-crop, as many crops as that clip's own length needs) and also reports the
single centre crop. The epoch is selected on validation; the test split, if any,
is read once, at that epoch's weights, after training. A non-finite loss stops
the run: it is returned with ``status="failed"`` and the reason.

A unit trains its arm's chain (:class:`~experiments.arms.Arm`) with the run's
:class:`Recipe`: the ``model`` and ``optim`` config groups (:func:`build_model`,
:func:`~experiments.training.optim.build_optimizer`; how long it trains is
:mod:`experiments.training.optim`'s), the crop length and ``compile``.

Under ``torchrun`` (a default process group of K > 1 processes) one run is
data-parallel: every rank holds the dataset on its own device, takes its 1/K of
each global batch (``batch_size`` stays the global batch, the learning rate is
unchanged), draws crops and augmentations from its own generator (seed, rank),
and DistributedDataParallel averages the gradients; BatchNorm becomes
SyncBatchNorm on CUDA. Evaluation is split over the ranks and the logits are
gathered, so every rank computes the same metrics as one process would.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from sklearn.metrics import confusion_matrix, f1_score
from torch import Tensor, nn

import augkit as ak

from ..arms import Arm
from ..config import Config, ModelConfig, OptimConfig
from ..data.audioset import AudioSet
from .optim import Convergence, build_optimizer
from .results import EpochLog, Metrics, RunResult


def eval_positions(lengths: Tensor, length: int) -> tuple[Tensor, Tensor]:
    """Crops that cover each clip: ``(clip row, position in [0, 1])`` pairs.

    Clip ``i`` gets ``K_i`` crops, the smallest odd number ``>= ceil(lengths[i] /
    length)`` (its own length, so one long clip adds crops to itself only), so that
    its middle crop (``K_i // 2``) is its centre crop; positions are evenly spaced
    from 0 (start) to 1 (end), and 0.5 for a single crop. Returns ``(rows (M,),
    positions (M,))``, clip-major, ``M = sum K_i`` (one host sync for ``M``).
    """
    k = ((lengths + length - 1) // length).clamp_min(1)
    k = k + 1 - k % 2
    rows = torch.repeat_interleave(torch.arange(lengths.shape[0], device=lengths.device), k)
    first = torch.cumsum(k, 0) - k
    j = torch.arange(rows.shape[0], device=lengths.device) - first[rows]
    kr = k[rows]
    return rows, torch.where(kr > 1, j.float() / (kr - 1).clamp_min(1), 0.5)


def rank_world() -> tuple[int, int]:
    """``(rank, world size)`` of the default process group; ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s crop and augmentation generator: from (seed, rank)."""
    return int(np.random.SeedSequence((seed, rank)).generate_state(1, np.uint64)[0] >> 1)


def _shard(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous part ``[lo, hi)`` of ``n`` items (sizes differ by <= 1)."""
    return rank * n // world, (rank + 1) * n // world


@torch.no_grad()
def evaluate(model: nn.Module, chain: ak.Compose, data: AudioSet, idx: Tensor, crop_len: int,
             batch_size: int, autocast: bool) -> Metrics:
    """Multi-crop and centre-crop metrics on clips ``idx``.

    Each clip is cropped by its own length (:func:`eval_positions`); its logits are
    averaged over its crops (multi-crop), and its middle crop gives the centre score.
    In a process group each rank scores its share of the crops and the logits are
    gathered, so every rank returns the same metrics (pass the bare model, not DDP).
    """
    model.eval()
    chain.eval()
    rank, world = rank_world()
    rows, positions = eval_positions(data.lengths[idx], crop_len)
    m = rows.shape[0]
    lo, hi = _shard(m, rank, world)
    logits = [torch.zeros(0, len(data.classes), device=rows.device)]
    for s in range(lo, hi, batch_size):
        e = min(s + batch_size, hi)
        wave = data.crop(idx[rows[s:e]], crop_len, positions[s:e])
        x = chain(wave).contiguous(memory_format=torch.channels_last)
        with torch.autocast(wave.device.type, dtype=torch.bfloat16, enabled=autocast):
            logits.append(model(x).float())
    per_crop = torch.cat(logits)  # (M, classes), clip-major
    if world > 1:  # pad every share to the largest, gather, drop the padding
        chunk = (m + world - 1) // world  # the largest share
        padded = torch.zeros(chunk, per_crop.shape[1], device=per_crop.device)
        padded[: per_crop.shape[0]] = per_crop
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded)
        per_crop = torch.cat([parts[r][: _shard(m, r, world)[1] - _shard(m, r, world)[0]]
                              for r in range(world)])
    n = idx.shape[0]
    count = torch.bincount(rows, minlength=n)  # K_i
    multi = torch.zeros(n, per_crop.shape[1], device=per_crop.device).index_add_(
        0, rows, per_crop) / count.unsqueeze(1)
    centre = per_crop[torch.cumsum(count, 0) - count + count // 2]
    labels = data.labels[idx]
    y, pred = labels.cpu().numpy(), multi.argmax(1).cpu().numpy()
    classes = list(range(len(data.classes)))
    return Metrics(
        loss=float(nn.functional.cross_entropy(multi, labels)),
        acc=float((pred == y).mean()),
        acc_centre=float((centre.argmax(1).cpu().numpy() == y).mean()),
        f1=float(f1_score(y, pred, average="macro", labels=classes, zero_division=0)),
        confusion=confusion_matrix(y, pred, labels=classes).tolist(),
    )


def build_model(model: ModelConfig, num_classes: int, device: torch.device) -> nn.Module:
    """The backbone of the ``model`` group, channels-last on ``device``."""
    adapter = (ak.InputAdapter(out_chans=3, size=model.input_size) if model.tutorial_input
               else None)
    net = ak.create_backbone(model.backbone, num_classes, in_chans=1,
                             pretrained=model.pretrained, input_adapter=adapter,
                             **model.backbone_kwargs)
    # channels_last: faster convolutions on CUDA (tensor cores) and on CPU (oneDNN).
    return net.to(device, memory_format=torch.channels_last)


@dataclass
class Trainer:
    """What one epoch of training needs; :meth:`epoch` runs it.

    In a process group of ``world`` ranks, ``batch_size`` is the global batch: every
    rank draws the same batch order (``order_generator``, seeded alike on all ranks),
    takes its contiguous share of each batch, and crops and augments it with its own
    ``generator``; ``step_fn`` is the DDP-wrapped model, which averages gradients.
    """

    model: nn.Module
    step_fn: Callable[[Tensor], Tensor]
    chain: ak.Compose
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    data: AudioSet
    train_idx: Tensor
    batch_size: int
    crop_len: int
    label_smoothing: float
    generator: torch.Generator
    autocast: bool
    #: The batch order's generator; ``None``: :attr:`generator` (one process).
    order_generator: torch.Generator | None = None
    rank: int = 0
    world: int = 1
    #: Crop every training clip at this position (0 start, 0.5 centre), not at random.
    fixed_position: float | None = None
    #: The converge protocol's state (``None``: the fixed protocol).
    convergence: Convergence | None = None

    @property
    def steps(self) -> int:
        return max(1, self.train_idx.shape[0] // self.batch_size)

    def batch(self, s: int, perm: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Step ``s``'s raw crops ``(B, 1, T)``, model input and soft targets ``(B, K)``
        (``B``: this rank's share of the global batch)."""
        idx = self.train_idx[perm[s * self.batch_size : (s + 1) * self.batch_size]]
        if self.world > 1:
            lo, hi = _shard(idx.shape[0], self.rank, self.world)
            idx = idx[lo:hi]
        if self.fixed_position is None:
            position = torch.rand(idx.shape, device=idx.device, generator=self.generator)
        else:
            position = torch.full(idx.shape, self.fixed_position, device=idx.device)
        wave = self.data.crop(idx, self.crop_len, position)
        x, target = self.chain(wave, target=self.data.labels[idx], generator=self.generator)
        return wave, x, target

    def train_step(self, x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """One optimizer step on this rank's ``(x, target)``; returns ``(logits, loss)``.

        With several ranks the loss is this rank's sum over the global batch size,
        times the world size, so that DDP's average over ranks is the global batch's
        mean loss even when the shares differ in size.
        """
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            logits = self.step_fn(x.contiguous(memory_format=torch.channels_last))
        if self.world == 1:
            loss = nn.functional.cross_entropy(logits.float(), target,
                                               label_smoothing=self.label_smoothing)
        else:
            loss = nn.functional.cross_entropy(
                logits.float(), target, label_smoothing=self.label_smoothing,
                reduction="sum") * (self.world / self.batch_size)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        return logits, loss

    @torch.no_grad()
    def clean(self, wave: Tensor) -> Tensor:
        """The model input of crops ``wave`` without augmentation (the chain in eval mode)."""
        self.chain.eval()
        try:
            return self.chain(wave)
        finally:
            self.chain.train()

    def epoch(self, on_first_batch: Callable[[Tensor, Tensor, Tensor], None] | None = None
              ) -> tuple[float, float, float]:
        """Train one epoch; returns ``(mean loss, accuracy, clips/s)`` (over all ranks).

        ``on_first_batch(crops, clean input, augmented input)`` sees the first batch.
        """
        self.model.train()
        self.chain.train()
        device = self.train_idx.device
        t0 = time.perf_counter()
        perm = torch.randperm(self.train_idx.shape[0], device=device,
                              generator=self.order_generator or self.generator)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        for s in range(self.steps):
            wave, x, target = self.batch(s, perm)
            if on_first_batch is not None and s == 0:
                on_first_batch(wave, self.clean(wave), x)
            logits, loss = self.train_step(x, target)
            loss_sum += loss.detach()
            correct += (logits.argmax(1) == target.argmax(1)).sum()
        if self.world > 1:  # the global batch's loss is the mean over ranks; counts add
            stats = torch.stack([loss_sum / self.world, correct])
            dist.all_reduce(stats)
            loss_sum, correct = stats[0], stats[1]
        clips = self.steps * self.batch_size
        loss, acc = float(loss_sum) / self.steps, float(correct) / clips  # syncs the device
        return loss, acc, clips / (time.perf_counter() - t0)


def device_label(device: torch.device) -> str:
    """``"cpu"`` or ``"cuda:0 (<GPU name>)"``: where a unit ran, for results.csv."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device.type)


@torch.no_grad()
def fit_normalizer(chain: ak.Compose, data: AudioSet, train_idx: Tensor, crop_len: int,
                   batch_size: int) -> dict[str, list[float]] | None:
    """Fit the chain's ``"freq"`` normaliser on the training clips only; its statistics.

    The features are those evaluation sees (the crops that cover each training clip,
    no augmentation); validation and test clips are never read. ``None`` when the
    chain's normaliser needs no fitting.
    """
    norm = chain.steps["normalize"] if "normalize" in chain.names else None
    if not isinstance(norm, ak.FrequencyStandardize):
        return None
    rows, positions = eval_positions(data.lengths[train_idx], crop_len)
    chain.eval().disable("normalize")
    try:
        norm.reset()
        for s in range(0, rows.shape[0], batch_size):
            wave = data.crop(train_idx[rows[s:s + batch_size]], crop_len,
                             positions[s:s + batch_size])
            norm.fit(chain(wave))
    finally:
        chain.enable("normalize")
    return {"mean": norm.mean.tolist(), "std": norm.std.tolist(),
            "frames": int(norm.count)}


@dataclass
class Recipe:
    """How every unit of a run trains, whatever its arm: the ``model`` and ``optim``
    config groups, the crop length (``data.crop_seconds``) and ``runtime.compile``."""

    model: ModelConfig
    optim: OptimConfig
    crop_seconds: float
    compile: bool = False

    @classmethod
    def of(cls, cfg: Config) -> Recipe:
        return cls(cfg.model, cfg.optim, cfg.data.crop_seconds, cfg.runtime.compile)


def make_trainer(chain: ak.Compose, recipe: Recipe, seed: int, data: AudioSet,
                 train_idx: Tensor, n_val: int = 1) -> Trainer:
    """Seed, then a copy of ``chain``, the model (DDP in a process group), the optimiser
    and the generators, on the data's device.

    ``n_val``: the validation clips, whose one clip's worth is the converge protocol's
    least rise.
    """
    rank, world = rank_world()
    device = data.labels.device
    optim = recipe.optim
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed if world == 1
                                                     else rank_seed(seed, rank))
    order = None if world == 1 else torch.Generator(device=device).manual_seed(seed)
    model = build_model(recipe.model, len(data.classes), device)
    bs = min(optim.batch_size, train_idx.shape[0])
    step_fn: nn.Module = model
    if world > 1:
        if bs < world:
            raise ValueError(f"a global batch of {bs} cannot be split over {world} processes; "
                             "use a --batch-size of at least the number of processes")
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        step_fn = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    steps = max(1, train_idx.shape[0] // bs)
    conv = (Convergence(steps, optim.warmup_epochs, optim.max_epochs, optim.patience, n_val)
            if optim.protocol == "converge" else None)
    opt, sched = build_optimizer(optim, model, steps, conv)
    return Trainer(model, torch.compile(step_fn) if recipe.compile else step_fn,
                   copy.deepcopy(chain).to(device), opt, sched, data, train_idx, bs,
                   int(round(recipe.crop_seconds * data.sample_rate)), optim.label_smoothing,
                   gen, autocast=device.type == "cuda", order_generator=order, rank=rank,
                   world=world, convergence=conv)


def _sync_buffers(model: nn.Module) -> None:
    """Rank 0's BatchNorm statistics to every rank, so that all evaluate one model."""
    for b in model.buffers():
        dist.broadcast(b, 0)


def train_run(arm: Arm, recipe: Recipe, seed: int, fold: int | None, data: AudioSet,
              splits: dict[str, Tensor], on_epoch: Callable[[EpochLog], None] | None = None,
              on_examples: Callable[[Tensor, Tensor, Tensor], None] | None = None
              ) -> RunResult:
    """Train one arm with one seed on ``data`` (on the training device).

    Args:
        arm: The arm, built (its chain is copied, not changed).
        recipe: The run's :class:`Recipe`.
        seed: Seeds the model init, the batch order, crops and augmentations.
        fold: The fold (``None`` without k-fold), recorded in the result.
        data: Clips on the training device.
        splits: ``{"train", "val"[, "test"]}`` index tensors on the same device.
        on_epoch: Called with each epoch's :class:`EpochLog` (logging, progress).
        on_examples: Called once with the first batch's raw crops, clean model input and
            augmented model input.

    In a process group (``torchrun``) every rank calls this with its own copy of the
    data; all return the same result (see the module's docstring).
    """
    optim = recipe.optim
    trainer = make_trainer(arm.chain, recipe, seed, data, splits["train"],
                           n_val=int(splits["val"].shape[0]))
    model, chain = trainer.model, trainer.chain
    stats = fit_normalizer(chain, data, splits["train"], trainer.crop_len,
                           optim.eval_batch_size)
    extra = {} if stats is None else {"norm_stats": stats}
    conv = trainer.convergence

    def evaluate_on(split: str) -> Metrics:
        if trainer.world > 1:
            _sync_buffers(model)
        return evaluate(model, chain, data, splits[split], trainer.crop_len,
                        optim.eval_batch_size, trainer.autocast)

    t_start, train_time = time.perf_counter(), 0.0
    history: list[EpochLog] = []
    best: tuple[tuple[float, float], int, Metrics, dict] | None = None
    more = True
    while more:
        epoch = len(history) + 1
        loss, acc, clips_per_s = trainer.epoch(on_examples if epoch == 1 else None)
        train_time += trainer.steps * trainer.batch_size / clips_per_s
        val = evaluate_on("val")
        history.append(EpochLog(epoch, loss, acc, trainer.opt.param_groups[0]["lr"],
                                clips_per_s, val.loss, val.acc, val.acc_centre, val.f1))
        if on_epoch is not None:
            on_epoch(history[-1])
        if not (math.isfinite(loss) and math.isfinite(val.loss)):
            what, value = ("training", loss) if not math.isfinite(loss) else ("validation",
                                                                             val.loss)
            return _result(arm, seed, fold, trainer, history, train_time, t_start, extra,
                           stop="diverged", status="failed",
                           error=f"the {what} loss is not finite ({value}) at epoch {epoch}: "
                                 f"training diverged (lr {optim.lr:g}); try a lower --lr")
        if best is None or (val.acc, -val.loss) > best[0]:
            best = ((val.acc, -val.loss), epoch, val, copy.deepcopy(model.state_dict()))
        more = conv.update(epoch, val.acc) if conv is not None else epoch < optim.epochs
    test = None
    if "test" in splits:  # read once, at the epoch selected on validation
        model.load_state_dict(best[3])
        test = evaluate_on("test")
    if conv is not None:
        extra["decay_from"] = conv.decay_from
    return _result(arm, seed, fold, trainer, history, train_time, t_start, extra,
                   stop="budget" if conv is None else conv.reason, selected_epoch=best[1],
                   val=best[2], test=test)


def _result(arm: Arm, seed: int, fold: int | None, trainer: Trainer, history: list[EpochLog],
            train_time: float, t_start: float, extra: dict, **outcome) -> RunResult:
    """The :class:`RunResult` of a unit that trained ``history`` (``outcome``: how it
    ended: ``stop``, and ``val``/``test``/``selected_epoch`` or ``status``/``error``)."""
    device = trainer.data.labels.device
    where = (device_label(device) if trainer.world == 1
             else f"{trainer.world} x {device_label(device)}")
    last = history[-1]
    outcome = {"selected_epoch": 0, "val": None, "test": None, **outcome}
    return RunResult(
        arm=arm.name, seed=seed, fold=fold, augmentations=list(arm.augmentations),
        history=history, final_train_acc=last.train_acc, final_train_loss=last.train_loss,
        final_val_acc=last.val_acc, final_val_f1=last.val_f1, final_test_acc=None,
        time_s=time.perf_counter() - t_start,
        train_clips_per_s=len(history) * trainer.steps * trainer.batch_size / train_time,
        params=sum(p.numel() for p in trainer.model.parameters()), device=where,
        threads=torch.get_num_threads(), normalize=arm.normalize,
        protocol="fixed" if trainer.convergence is None else "converge", extra=extra,
        **outcome)
