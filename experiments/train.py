"""One (arm, seed) run: device-resident data, one augkit chain, train, evaluate.

The dataset lives on the training device (:class:`~experiments.data.AudioSet`);
a batch is an index slice of a device-side permutation, cropped per example on
the device. Evaluation averages logits over crops that cover each whole clip
(multi-crop, as many crops as that clip's own length needs) and also reports the
single centre crop. The epoch is selected on validation; the test split, if any,
is read once, at that epoch's weights, after training. A non-finite loss stops
the run: it is returned with ``status="failed"`` and the reason.

How long a run trains is the config's ``protocol``: ``"fixed"`` trains ``epochs``
epochs on ``schedule``; ``"converge"`` (:class:`Convergence`) warms up, holds the
learning rate until validation stops improving (or the cap comes near), then decays
it linearly to 0, so that every arm ends fully decayed, each after as many epochs as
it needed.

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

from .arms import arm_normalize, config_chain, context_for
from .config import Config
from .data import AudioSet
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


def build_model(cfg: Config, num_classes: int, device: torch.device) -> nn.Module:
    adapter = ak.InputAdapter(out_chans=3, size=cfg.input_size) if cfg.tutorial_input else None
    model = ak.create_backbone(cfg.backbone, num_classes, in_chans=1, pretrained=cfg.pretrained,
                               input_adapter=adapter, **cfg.backbone_kwargs)
    # channels_last: faster convolutions on CUDA (tensor cores) and on CPU (oneDNN).
    return model.to(device, memory_format=torch.channels_last)


def build_optimizer(cfg: Config, model: nn.Module, steps_per_epoch: int,
                    convergence: Convergence | None = None):
    """``(optimizer, per-step scheduler)`` from the config's optimisation fields; with
    ``convergence``, its :meth:`Convergence.factor` is the schedule."""
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    opt = opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    f = convergence.factor if convergence is not None else lr_lambda(
        cfg.schedule, cfg.epochs, cfg.warmup_epochs, steps_per_epoch, cfg.step_size,
        cfg.gamma, cfg.warmup_start_factor)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, f)


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

    def epoch(self, on_first_batch: Callable[[Tensor, Tensor], None] | None = None
              ) -> tuple[float, float, float]:
        """Train one epoch; returns ``(mean loss, accuracy, clips/s)`` (over all ranks)."""
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
                on_first_batch(wave, x)
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


def make_trainer(cfg: Config, augmentations: list[str], seed: int, data: AudioSet,
                 train_idx: Tensor, normalize: str | None = None, n_val: int = 1) -> Trainer:
    """Seed, build the chain, model (DDP in a process group), optimizer and generators.

    ``normalize``: the chain's normalisation (default: the config's); ``n_val``: the
    validation clips, whose one clip's worth is the converge protocol's least rise.
    """
    rank, world = rank_world()
    device = data.labels.device
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed if world == 1
                                                     else rank_seed(seed, rank))
    order = None if world == 1 else torch.Generator(device=device).manual_seed(seed)
    crop_len = int(round(cfg.crop_seconds * data.sample_rate))
    ctx = context_for(cfg, data.sample_rate, len(data.classes))
    chain = config_chain(cfg, augmentations, ctx,
                         cfg.normalize if normalize is None else normalize).to(device)
    model = build_model(cfg, len(data.classes), device)
    bs = min(cfg.batch_size, train_idx.shape[0])
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
    conv = (Convergence(steps, cfg.warmup_epochs, cfg.max_epochs, cfg.patience, n_val)
            if cfg.protocol == "converge" else None)
    opt, sched = build_optimizer(cfg, model, steps, conv)
    return Trainer(model, torch.compile(step_fn) if cfg.compile else step_fn, chain, opt, sched,
                   data, train_idx, bs, crop_len, cfg.label_smoothing, gen,
                   autocast=device.type == "cuda", order_generator=order, rank=rank,
                   world=world, convergence=conv)


def _sync_buffers(model: nn.Module) -> None:
    """Rank 0's BatchNorm statistics to every rank, so that all evaluate one model."""
    for b in model.buffers():
        dist.broadcast(b, 0)


def train_run(cfg: Config, arm: str, augmentations: list[str], seed: int, fold: int | None,
              data: AudioSet, splits: dict[str, Tensor],
              on_epoch: Callable[[EpochLog], None] | None = None,
              on_examples: Callable[[Tensor, Tensor], None] | None = None) -> RunResult:
    """Train one arm with one seed on ``data`` (on the training device).

    Args:
        cfg: Resolved config.
        arm, augmentations: The arm's name and the augmentations it turns on.
        seed: Seeds the model init, the batch order, crops and augmentations.
        fold: The fold (``None`` without k-fold), recorded in the result.
        data: Clips on the training device.
        splits: ``{"train", "val"[, "test"]}`` index tensors on the same device.
        on_epoch: Called with each epoch's :class:`EpochLog` (logging, progress).
        on_examples: Called once with the first batch's raw crops and model input.

    In a process group (``torchrun``) every rank calls this with its own copy of the
    data; all return the same result (see the module's docstring).
    """
    device = data.labels.device
    normalize = arm_normalize(arm, cfg.normalize)
    trainer = make_trainer(cfg, augmentations, seed, data, splits["train"], normalize,
                           n_val=int(splits["val"].shape[0]))
    model, chain, opt, bs, crop_len = (trainer.model, trainer.chain, trainer.opt,
                                       trainer.batch_size, trainer.crop_len)
    stats = fit_normalizer(chain, data, splits["train"], crop_len, cfg.eval_batch_size)
    extra = {} if stats is None else {"norm_stats": stats}
    conv = trainer.convergence
    world = trainer.world
    where = device_label(device) if world == 1 else f"{world} x {device_label(device)}"

    def evaluate_on(split: str) -> Metrics:
        if world > 1:
            _sync_buffers(model)
        return evaluate(model, chain, data, splits[split], crop_len, cfg.eval_batch_size,
                        trainer.autocast)

    t_start, train_time = time.perf_counter(), 0.0
    history: list[EpochLog] = []
    best: tuple[tuple[float, float], int, Metrics, dict] | None = None
    epoch, more = 0, True
    while more:
        epoch += 1
        loss, acc, clips_per_s = trainer.epoch(on_examples if epoch == 1 else None)
        train_time += trainer.steps * bs / clips_per_s
        val = evaluate_on("val")
        history.append(EpochLog(epoch, loss, acc, opt.param_groups[0]["lr"], clips_per_s,
                                val.loss, val.acc, val.acc_centre, val.f1))
        if not (math.isfinite(loss) and math.isfinite(val.loss)):
            what = "training" if not math.isfinite(loss) else "validation"
            value = loss if not math.isfinite(loss) else val.loss
            if on_epoch is not None:
                on_epoch(history[-1])
            return RunResult(
                arm=arm, seed=seed, fold=fold, augmentations=list(augmentations),
                selected_epoch=0, val=None, test=None, history=history,
                final_train_acc=acc, final_train_loss=loss, final_val_acc=val.acc,
                final_val_f1=val.f1, final_test_acc=None,
                time_s=time.perf_counter() - t_start,
                train_clips_per_s=epoch * trainer.steps * bs / train_time,
                params=sum(p.numel() for p in model.parameters()), device=where,
                threads=torch.get_num_threads(), normalize=normalize, protocol=cfg.protocol,
                stop="diverged", extra=extra, status="failed",
                error=f"the {what} loss is not finite ({value}) at epoch {epoch}: training "
                      f"diverged (lr {cfg.lr:g}); try a lower --lr")
        if best is None or (val.acc, -val.loss) > best[0]:
            best = ((val.acc, -val.loss), epoch, val, copy.deepcopy(model.state_dict()))
        if on_epoch is not None:
            on_epoch(history[-1])
        more = conv.update(epoch, val.acc) if conv is not None else epoch < cfg.epochs
    test = None
    if "test" in splits:  # read once, at the epoch selected on validation
        model.load_state_dict(best[3])
        test = evaluate_on("test")
    last = history[-1]
    if conv is not None:
        extra["decay_from"] = conv.decay_from
    return RunResult(
        arm=arm, seed=seed, fold=fold, augmentations=list(augmentations),
        selected_epoch=best[1], val=best[2], test=test, history=history,
        final_train_acc=last.train_acc, final_train_loss=last.train_loss,
        final_val_acc=last.val_acc, final_val_f1=last.val_f1, final_test_acc=None,
        time_s=time.perf_counter() - t_start,
        train_clips_per_s=len(history) * trainer.steps * bs / train_time,
        params=sum(p.numel() for p in model.parameters()), device=where,
        threads=torch.get_num_threads(), normalize=normalize, protocol=cfg.protocol,
        stop="budget" if conv is None else conv.reason, extra=extra)
