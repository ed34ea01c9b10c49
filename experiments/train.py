"""One (arm, seed) run: device-resident data, one augkit chain, train, evaluate.

The dataset lives on the training device (:class:`~experiments.data.AudioSet`);
a batch is an index slice of a device-side permutation, cropped per example on
the device. Evaluation averages logits over crops that cover each whole clip
(multi-crop, as many crops as that clip's own length needs) and also reports the
single centre crop. The epoch is selected on validation; the test split, if any,
is evaluated once, at that epoch's weights. A non-finite loss stops the run: it
is returned with ``status="failed"`` and the reason.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from sklearn.metrics import confusion_matrix, f1_score
from torch import Tensor, nn

import augkit as ak

from .arms import Context, build_chain
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


@torch.no_grad()
def evaluate(model: nn.Module, chain: ak.Compose, data: AudioSet, idx: Tensor, crop_len: int,
             batch_size: int, autocast: bool) -> Metrics:
    """Multi-crop and centre-crop metrics on clips ``idx``.

    Each clip is cropped by its own length (:func:`eval_positions`); its logits are
    averaged over its crops (multi-crop), and its middle crop gives the centre score.
    """
    model.eval()
    chain.eval()
    rows, positions = eval_positions(data.lengths[idx], crop_len)
    logits = []
    for s in range(0, rows.shape[0], batch_size):
        wave = data.crop(idx[rows[s : s + batch_size]], crop_len, positions[s : s + batch_size])
        x = chain(wave).contiguous(memory_format=torch.channels_last)
        with torch.autocast(wave.device.type, dtype=torch.bfloat16, enabled=autocast):
            logits.append(model(x).float())
    per_crop = torch.cat(logits)  # (M, classes), clip-major
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


def lr_lambda(schedule: str, epochs: int, warmup_epochs: float, steps_per_epoch: int
              ) -> Callable[[int], float]:
    """Linear warmup then cosine decay per step (``"cosine"``), or ``"constant"``."""
    total = epochs * steps_per_epoch
    warm = int(round(warmup_epochs * steps_per_epoch))

    def f(step: int) -> float:
        if schedule == "constant":
            return 1.0
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    return f


def build_model(cfg: Config, num_classes: int, device: torch.device) -> nn.Module:
    adapter = ak.InputAdapter(out_chans=3, size=224) if cfg.tutorial_input else None
    model = ak.create_backbone(cfg.backbone, num_classes, in_chans=1, pretrained=cfg.pretrained,
                               input_adapter=adapter, **cfg.backbone_kwargs)
    # channels_last: faster convolutions on CUDA (tensor cores) and on CPU (oneDNN).
    return model.to(device, memory_format=torch.channels_last)


def build_optimizer(cfg: Config, model: nn.Module, steps_per_epoch: int):
    """``(optimizer, per-step scheduler)`` from the config's optimisation fields."""
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    opt = opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_lambda(cfg.schedule, cfg.epochs, cfg.warmup_epochs, steps_per_epoch))
    return opt, sched


@dataclass
class Trainer:
    """What one epoch of training needs; :meth:`epoch` runs it."""

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

    @property
    def steps(self) -> int:
        return max(1, self.train_idx.shape[0] // self.batch_size)

    def batch(self, s: int, perm: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Step ``s``'s raw crops ``(B, 1, T)``, model input and soft targets ``(B, K)``."""
        idx = self.train_idx[perm[s * self.batch_size : (s + 1) * self.batch_size]]
        position = torch.rand(idx.shape, device=idx.device, generator=self.generator)
        wave = self.data.crop(idx, self.crop_len, position)
        x, target = self.chain(wave, target=self.data.labels[idx], generator=self.generator)
        return wave, x, target

    def epoch(self, on_first_batch: Callable[[Tensor, Tensor], None] | None = None
              ) -> tuple[float, float, float]:
        """Train one epoch; returns ``(mean loss, accuracy, clips/s)``."""
        self.model.train()
        self.chain.train()
        device = self.train_idx.device
        t0 = time.perf_counter()
        perm = torch.randperm(self.train_idx.shape[0], device=device, generator=self.generator)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        for s in range(self.steps):
            wave, x, target = self.batch(s, perm)
            if on_first_batch is not None and s == 0:
                on_first_batch(wave, x)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.autocast):
                logits = self.step_fn(x.contiguous(memory_format=torch.channels_last))
            loss = nn.functional.cross_entropy(logits.float(), target,
                                               label_smoothing=self.label_smoothing)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            loss_sum += loss.detach()
            correct += (logits.argmax(1) == target.argmax(1)).sum()
        clips = self.steps * self.batch_size
        loss, acc = float(loss_sum) / self.steps, float(correct) / clips  # syncs the device
        return loss, acc, clips / (time.perf_counter() - t0)


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
    """
    device = data.labels.device
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    crop_len = int(round(cfg.crop_seconds * data.sample_rate))
    ctx = Context(data.sample_rate, len(data.classes), cfg.scale, cfg.noise_dir, cfg.ir_dir)
    chain = build_chain(augmentations, cfg.augment, ctx, n_fft=cfg.n_fft,
                        hop_length=cfg.hop_length, n_mels=cfg.n_mels, f_min=cfg.f_min,
                        f_max=cfg.f_max, top_db=cfg.top_db).to(device)
    model = build_model(cfg, len(data.classes), device)
    bs = min(cfg.batch_size, splits["train"].shape[0])
    opt, sched = build_optimizer(cfg, model, max(1, splits["train"].shape[0] // bs))
    trainer = Trainer(model, torch.compile(model) if cfg.compile else model, chain, opt, sched,
                      data, splits["train"], bs, crop_len, cfg.label_smoothing, gen,
                      autocast=device.type == "cuda")

    def evaluate_on(split: str) -> Metrics:
        return evaluate(model, chain, data, splits[split], crop_len, cfg.eval_batch_size,
                        trainer.autocast)

    t_start, train_time = time.perf_counter(), 0.0
    history: list[EpochLog] = []
    best: tuple[tuple[float, float], int, Metrics, dict] | None = None
    for epoch in range(1, cfg.epochs + 1):
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
                params=sum(p.numel() for p in model.parameters()), status="failed",
                error=f"the {what} loss is not finite ({value}) at epoch {epoch}: training "
                      f"diverged (lr {cfg.lr:g}); try a lower --lr")
        if best is None or (val.acc, -val.loss) > best[0]:
            best = ((val.acc, -val.loss), epoch, val, copy.deepcopy(model.state_dict()))
        if on_epoch is not None:
            on_epoch(history[-1])
    final_test_acc = test = None
    if "test" in splits:
        final_test_acc = evaluate_on("test").acc
        model.load_state_dict(best[3])
        test = evaluate_on("test")
    last = history[-1]
    return RunResult(
        arm=arm, seed=seed, fold=fold, augmentations=list(augmentations),
        selected_epoch=best[1], val=best[2], test=test, history=history,
        final_train_acc=last.train_acc, final_train_loss=last.train_loss,
        final_val_acc=last.val_acc, final_val_f1=last.val_f1, final_test_acc=final_test_acc,
        time_s=time.perf_counter() - t_start,
        train_clips_per_s=cfg.epochs * trainer.steps * bs / train_time,
        params=sum(p.numel() for p in model.parameters()))
