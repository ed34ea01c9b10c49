"""Pure batched augmentation ops.

Each op takes the batch and per-example parameters (tensors with a leading
batch dim ``B``) and has no randomness of its own. Shapes: waveforms
``(B, C, T)``, spectrograms ``(B, C, F, T)``; any op that works on the last
axis accepts either.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "mask_along_axis",
    "add_noise",
    "add_noise_snr",
    "signal_power",
    "signal_rms",
    "valid_mask",
    "gain",
    "crop",
    "crop_segments",
    "offsets_at",
    "shift",
    "mix",
    "soft_targets",
    "check_target_batch",
    "reads_values",
    "per_example",
]


def per_example(v: Tensor, x: Tensor) -> Tensor:
    """Reshape a ``(B,)`` (or ``(B, k)``) tensor to broadcast over ``x`` of shape ``(B, ...)``.

    Trailing dims of ``v`` line up with ``x``'s leading non-batch dims only when they
    are 1; in practice ``v`` is ``(B,)``.
    """
    return v.reshape(v.shape[0], *([1] * (x.ndim - 1)))


def mask_along_axis(x: Tensor, start: Tensor, width: Tensor, axis: int,
                    value: float | str = 0.0) -> Tensor:
    """SpecAugment masks: set ``[start, start + width)`` along ``axis`` to ``value``.

    Args:
        x: Spectrogram of shape ``(B, C, F, T)`` (or any ``(B, ...)``).
        start: Mask starts of shape ``(B, M)``, ``M`` masks per example.
        width: Mask widths of shape ``(B, M)``; width 0 masks nothing.
        axis: Axis of ``x`` to mask, e.g. ``-1`` for time, ``-2`` for frequency.
        value: Fill value, or ``"mean"`` for each example's mean.

    Returns:
        Tensor like ``x``.
    """
    axis = axis % x.ndim
    pos = torch.arange(x.shape[axis], device=x.device)
    hit = (pos >= start.unsqueeze(-1)) & (pos < (start + width).unsqueeze(-1))  # (B, M, L)
    hit = hit.any(dim=1)  # (B, L)
    shape = [x.shape[0]] + [1] * (x.ndim - 1)
    shape[axis] = x.shape[axis]
    hit = hit.reshape(shape)
    if value == "mean":
        fill = x.mean(dim=tuple(range(1, x.ndim)), keepdim=True)
    else:
        fill = torch.full((), float(value), dtype=x.dtype, device=x.device)
    return torch.where(hit, fill, x)


def add_noise(x: Tensor, noise: Tensor, std: Tensor) -> Tensor:
    """``x + std * noise`` with a per-example ``std`` of shape ``(B,)``.

    One fused pass (``addcmul``) when ``x``, ``noise`` and ``std`` share a dtype;
    ``std = 0`` gives ``x`` back exactly.
    """
    s = per_example(std, x)
    if x.dtype == noise.dtype == s.dtype:
        return torch.addcmul(x, s, noise)
    return x + (s * noise.float()).to(x.dtype)


def valid_mask(x: Tensor, lengths: Tensor | None) -> Tensor | None:
    """``(B, 1, ..., T)`` bool: true on the first ``lengths`` samples (``None`` without)."""
    if lengths is None:
        return None
    pos = torch.arange(x.shape[-1], device=x.device)
    return (pos < lengths.reshape(-1, *([1] * (x.ndim - 1))))


def signal_power(x: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Mean square per example over its channels and valid samples, float32 ``(B,)``.

    An RMS above about ``1.8e19`` (the square root of float32's largest value)
    makes the power itself ``inf``; :func:`signal_rms` gives the level as an RMS.
    """
    return signal_rms(x, lengths).square()


def signal_rms(x: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Root mean square per example over its channels and valid samples, float32 ``(B,)``.

    One reading pass (``vector_norm``, no squared copy, no host sync). The RMS
    itself fits float32 for any finite input, but ``vector_norm`` sums squares
    in the input's dtype: float32 (and float16/bfloat16, measured in float32)
    examples whose RMS is above about ``1e19 / sqrt(N)`` (``N`` samples per
    example: ``1e17`` for 16000) overflow to an ``inf`` level. Such input is not
    audio; scale it down, or pass float64, which is measured in float64.
    (Checking for the overflow and measuring again would take a host sync, or a
    second pass over every batch.)

    Args:
        x: ``(B, ...)``, e.g. waveforms ``(B, C, T)``.
        lengths: Valid samples per example ``(B,)``; samples past it do not count.
            (Default: all of ``T``)

    Returns:
        float32 ``(B,)``; 0 for a silent example.
    """
    dims = tuple(range(1, x.ndim))
    mask = valid_mask(x, lengths)
    wide = x if x.dtype in (torch.float32, torch.float64) else x.float()
    per_row = math.prod(x.shape[1:-1])
    if mask is None:
        root_count = math.sqrt(max(per_row * x.shape[-1], 1))
    else:
        wide = torch.where(mask, wide, 0.0)
        root_count = (mask.sum(dim=dims) * per_row).clamp_min(1).sqrt()
    norm = torch.linalg.vector_norm(wide, dim=dims)  # one reading pass, no squared copy
    return (norm / root_count).float()


def add_noise_snr(x: Tensor, noise: Tensor, snr_db: Tensor, lengths: Tensor | None = None,
                  *, noise_power: Tensor | None = None, reuse_noise: bool = False) -> Tensor:
    """Add ``noise`` scaled to a per-example SNR.

    Args:
        x: Waveforms ``(B, C, T)`` (or any ``(B, ...)``).
        noise: Noise like ``x`` (any level: it is scaled by its own power).
        snr_db: Signal-to-noise ratio in dB, shape ``(B,)``; ``+inf`` adds nothing.
        lengths: Valid samples per example ``(B,)``: the power is measured there,
            and the padding after it stays as it is. (Default: all of ``T``)
        noise_power: The noise's mean square per example ``(B,)`` when known
            (it is then not measured); ignored with ``lengths``.
        reuse_noise: Write the result into ``noise`` (a temporary of the caller's)
            when it can hold it (``x``'s dtype and shape, contiguous): one large
            buffer fewer.

    Returns:
        Tensor like ``x``. The signal power is the mean square over all of an
        example's channels and valid samples; a silent example stays silent. The
        levels are compared as RMS values (:func:`signal_rms`), never as powers:
        float64 input of any finite level gives finite noise; float32 input up to
        an RMS of about ``1e19 / sqrt(N)`` (above, the sum of squares overflows:
        ``inf`` noise; see :func:`signal_rms`).
    """
    if noise_power is None or lengths is not None:
        noise_rms = signal_rms(noise, lengths)
    else:
        noise_rms = noise_power.float().sqrt()
    std = signal_rms(x, lengths) / noise_rms.clamp_min(1e-15) * torch.pow(10.0, -snr_db / 20.0)
    mask = valid_mask(x, lengths)
    if (reuse_noise and noise.dtype == x.dtype == std.dtype and noise.shape == x.shape
            and noise.is_contiguous()):  # (not an expanded view, whose writes would overlap)
        if mask is not None:
            noise.masked_fill_(~mask, 0.0)
        return noise.mul_(per_example(std, x)).add_(x)
    if mask is not None:
        noise = torch.where(mask, noise, 0.0)
    return add_noise(x, noise, std)


def gain(x: Tensor, factor: Tensor, additive: bool = False) -> Tensor:
    """Scale each example by ``factor`` (shape ``(B,)``), or add it when ``additive``."""
    f = per_example(factor, x).to(x.dtype)
    return x + f if additive else x * f


def offsets_at(position: Tensor, room: Tensor | int) -> Tensor:
    """Integer offsets ``0..room`` from positions in ``[0, 1]``.

    ``floor(position * (room + 1))`` capped at ``room``: uniform positions give
    uniform offsets; ``0`` is the start, ``1`` the end, ``0.5`` the centre
    (rounded up).

    Args:
        position: Float tensor of shape ``(B,)`` (any shape), values in ``[0, 1]``.
        room: Largest offset, an int or an int64 tensor broadcastable to ``position``.

    Returns:
        int64 tensor like ``position``.
    """
    offset = (position.double() * (room + 1)).long()
    # A Python int stays a scalar: copying it to the device would sync the host.
    return offset.clamp_max(room) if isinstance(room, int) else torch.minimum(offset, room)


def crop_segments(flat: Tensor, start: Tensor, valid: Tensor, length: int) -> Tensor:
    """Take ``length`` consecutive samples of a 1-D buffer from each ``start``.

    The one crop of augkit: :func:`crop` and packed datasets (many clips of
    different lengths stored end to end) both use it. Samples at or past
    ``valid`` (counted from each start) are zero, so a short clip is padded and
    a segment never reads into the next clip.

    Args:
        flat: 1-D tensor of samples, any dtype.
        start: Index into ``flat`` of each segment's first sample, int64 ``(R,)``.
        valid: Samples available from each start, int64 ``(R,)`` (``<= 0``: all zero).
        length: Samples per segment.

    Returns:
        Tensor of shape ``(R, length)``, ``flat``'s dtype.
    """
    pos = torch.arange(length, device=flat.device)
    idx = (start.unsqueeze(-1) + pos).clamp(0, max(flat.numel() - 1, 0))
    # One flat gather (torch.take) is ~3x faster on CPU than 2-D advanced indexing.
    x = torch.take(flat, idx)
    return torch.where(pos < valid.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype,
                                                                 device=x.device))


def crop(x: Tensor, offset: Tensor, length: int, lengths: Tensor | None = None) -> Tensor:
    """Take ``length`` samples from ``offset`` (shape ``(B,)``) along the last axis.

    Args:
        x: ``(B, ..., T)``, e.g. waveforms ``(B, C, T)`` or spectrograms ``(B, C, F, T)``.
        offset: Start per example, int64 ``(B,)``, ``>= 0``.
        length: Output length; may exceed ``T`` (the rest is zero).
        lengths: Valid samples per example, int64 ``(B,)``; samples past it read as
            zero. (Default: ``T`` for every example)

    Returns:
        Tensor of shape ``(B, ..., length)``.
    """
    b, t = x.shape[0], x.shape[-1]
    rows = x.reshape(b, -1, t)
    r = rows.shape[1]
    end = torch.full_like(offset, t) if lengths is None else lengths.clamp_max(t)
    start = torch.arange(b * r, device=x.device).view(b, r) * t + offset.unsqueeze(-1)
    valid = (end - offset).unsqueeze(-1).expand(b, r)
    out = crop_segments(rows.reshape(-1), start.reshape(-1), valid.reshape(-1), length)
    return out.reshape(*x.shape[:-1], length)


def shift(x: Tensor, amount: Tensor, rollover: bool = True) -> Tensor:
    """Shift each example along the last axis by ``amount`` samples (shape ``(B,)``).

    Positive shifts move content later. With ``rollover`` the samples that fall
    off one end come back at the other (``torch.roll`` per example); otherwise
    the vacated samples are zero.

    Every row (``(B, ..., T)`` seen as ``R`` rows of ``T``) is laid out twice end
    to end (``[x, x]``, or ``[0, x, 0]`` without rollover), and each output row is
    the window of ``T`` samples at its example's start: one ``index_select`` of
    whole contiguous windows, no per-sample index (a gather with an int64 index as
    large as ``x`` is several times slower on CPU). Exact: samples are copied.
    """
    n = x.shape[-1]
    if x.numel() == 0:
        return x.clone()
    rows = x.reshape(-1, n)
    rows_per_example = rows.shape[0] // x.shape[0]
    if rollover:
        buf = torch.cat([rows, rows], dim=-1)
        start = torch.remainder(-amount, n)
    else:
        zeros = rows.new_zeros(rows.shape)
        buf = torch.cat([zeros, rows, zeros], dim=-1)
        start = n - amount.clamp(-n, n)
    first = (torch.arange(rows.shape[0], device=x.device) * buf.shape[-1]
             + start.reshape(-1, 1).expand(-1, rows_per_example).reshape(-1))
    windows = buf.reshape(-1).unfold(0, n, 1)  # (R * width - n + 1, n), a view
    return windows.index_select(0, first).reshape(x.shape)


def mix(x: Tensor, target: Tensor | None, lam: Tensor, perm: Tensor
        ) -> tuple[Tensor, Tensor | None]:
    """Mixup: ``lam * x + (1 - lam) * x[perm]``, and the same for soft targets.

    Args:
        x: Batch ``(B, ...)``.
        target: Soft targets ``(B, K)``, or ``None`` to mix the inputs alone.
        lam: Mixing weights ``(B,)`` in ``[0, 1]``; ``1`` leaves an example as it is.
        perm: Partner index per example ``(B,)``.

    Returns:
        ``(mixed x, mixed target or None)`` with the input shapes.
    """
    lx = per_example(lam, x).to(x.dtype)
    mixed = lx * x + (1 - lx) * x[perm]
    if target is None:
        return mixed, None
    lt = lam.unsqueeze(-1).to(target.dtype)
    return mixed, lt * target + (1 - lt) * target[perm]


def reads_values(check: bool | None, t: Tensor) -> bool:
    """Whether to check ``t``'s values: ``check``, or by default on the CPU only.

    ``None`` (the default) reads CPU tensors (free there) but not CUDA ones (a
    host sync) nor anything under ``torch.compile`` (a graph break).
    """
    if check is not None:
        return bool(check)
    return t.device.type == "cpu" and not torch.compiler.is_compiling()


def _prefix(owner: str | None) -> str:
    return f"{owner}: " if owner else ""


def check_target_batch(target, batch: int | None, owner: str | None = None) -> None:
    """Check that ``target`` is a tensor with one row per example (a shape check, no sync).

    Args:
        target: Targets ``(B,)`` or ``(B, K)``.
        batch: ``B``, the examples in the batch (``None``: not checked).
        owner: Who is checking, for the messages (e.g. ``"Mixup"``).
    """
    if not isinstance(target, Tensor):
        raise TypeError(f"{_prefix(owner)}target must be a tensor of (B,) class indices or "
                        f"(B, K) soft targets, got {type(target).__name__}")
    if target.ndim not in (1, 2):
        raise ValueError(f"{_prefix(owner)}targets must be (B,) class indices or (B, K) soft "
                         f"targets, got shape {tuple(target.shape)}")
    if batch is not None and target.shape[0] != batch:
        raise ValueError(f"{_prefix(owner)}target has {target.shape[0]} rows but the batch has "
                         f"{batch} examples; give one target per example")


def soft_targets(target: Tensor, num_classes: int | None = None, *, batch: int | None = None,
                 check: bool | None = None, owner: str | None = None) -> Tensor:
    """Class indices ``(B,)`` -> one-hot ``(B, K)`` float; soft ``(B, K)`` -> float.

    Checked: the shape (one row per example when ``batch`` is given), the
    dtype (class indices are integers), soft targets' ``K`` against
    ``num_classes``. The class indices' *values* (in ``[0, num_classes)``) are
    checked when ``check`` is ``True``, or when it is ``None`` and the targets
    are on the CPU: on CUDA reading them is a host sync, which augkit's steps do
    not make unless asked (``check=True``), and under ``torch.compile`` a graph
    break. Unchecked, an index outside the range gives an all-zero row.

    Args:
        target: int ``(B,)`` class indices or ``(B, K)`` class probabilities.
        num_classes: ``K``, needed for class indices.
        batch: ``B``, the examples the targets go with. (Default: not checked)
        check: Check the class indices' values: ``True`` always, ``False`` never,
            ``None`` on the CPU only. (Default: ``None``)
        owner: Who is checking, for the messages (e.g. ``"Mixup"``).

    Returns:
        float32 tensor of shape ``(B, K)``.
    """
    check_target_batch(target, batch, owner)
    who = _prefix(owner)
    if target.ndim == 2:
        if num_classes is not None and target.shape[1] != num_classes:
            raise ValueError(f"{who}soft targets have K={target.shape[1]} classes but "
                             f"num_classes={num_classes}")
        return target.float()
    if num_classes is None:
        raise ValueError(f"{who}num_classes is needed to turn class indices (B,) into soft "
                         "targets, e.g. Mixup(num_classes=10); or pass (B, K) soft targets")
    if target.is_floating_point() or target.is_complex():
        raise TypeError(f"{who}class indices must be an integer tensor, got {target.dtype}; "
                        "e.g. target.long(), or pass (B, K) soft targets")
    if reads_values(check, target) and target.numel():
        bad = (target < 0) | (target >= num_classes)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(f"{who}target holds class {int(target[i])} (example {i}), outside "
                             f"[0, num_classes={num_classes})")
    # A comparison, not F.one_hot: that checks the label range on the host (a sync on
    # CUDA). Unchecked, a label outside [0, num_classes) gives an all-zero row.
    classes = torch.arange(num_classes, device=target.device)
    return (target.long().unsqueeze(-1) == classes).float()
