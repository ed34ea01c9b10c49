"""Spectral ops: batched mel spectrogram, per-example decibels.

The mel filterbank is ``torchaudio.functional.melscale_fbanks`` (built once, by
:class:`~augkit.MelFrontend`); the decibels are
``torchaudio.functional.amplitude_to_DB`` with its batch axis set per example.
"""

from __future__ import annotations

import math

import torch
import torchaudio
from torch import Tensor

__all__ = ["melspectrogram", "amplitude_to_db", "frame_chunk_size"]


#: Bytes of windowed frames per chunk and per pair of CPU threads (about one core's
#: share of L2 cache). Measured best on 2 cores (2026-11); with more threads a chunk
#: grows so that each thread still gets a cache-sized share of every FFT and matmul.
CHUNK_BYTES_PER_2_THREADS = 2 << 20


def frame_chunk_size(n_rows: int, n_frames: int, n_fft: int, device: torch.device,
                     target_bytes: int | None = None) -> int:
    """Frames per chunk so that one chunk of windowed frames is about ``target_bytes``.

    On CPU the frontend is memory-bound: processing the frames in cache-sized
    chunks (the same few ops per chunk) is 2-3x faster than one pass over the
    whole batch. The default ``target_bytes`` scales with the thread count
    (``torch.get_num_threads()``): 2 MiB per two threads, so that on many cores
    one clip is not cut into chunks too small to keep every thread busy. On
    accelerators one pass is best, so this returns ``n_frames``.
    """
    if device.type != "cpu":
        return n_frames
    if target_bytes is None:
        # torch.compile cannot trace the thread query (fullgraph): there, the 2-thread size.
        threads = 2 if torch.compiler.is_compiling() else torch.get_num_threads()
        target_bytes = CHUNK_BYTES_PER_2_THREADS * max(1, threads // 2)
    per_frame = max(1, n_rows) * n_fft * 4
    return max(1, min(n_frames, target_bytes // per_frame))


def melspectrogram(
    waveform: Tensor,
    window: Tensor,
    fb: Tensor,
    hop_length: int,
    center: bool = True,
    pad_mode: str = "reflect",
    power: float = 2.0,
    chunk_frames: int | None = None,
) -> Tensor:
    """Mel spectrogram of a batch of waveforms, in float32.

    Equivalent to ``torch.stft`` -> ``|.| ** power`` -> mel projection, but
    computed as framed real FFTs whose power and projection are fused per
    chunk of frames, which keeps the working set in cache on CPU.

    Args:
        waveform: Tensor of shape ``(..., time)``.
        window: Window of shape ``(n_fft,)`` (already zero-padded to ``n_fft``).
        fb: Mel filterbank of shape ``(n_fft // 2 + 1, n_mels)``.
        hop_length: Hop between frames in samples.
        center: Pad ``n_fft // 2`` on both sides so frame ``t`` is centred at
            ``t * hop_length``. (Default: ``True``)
        pad_mode: Padding mode when ``center`` is true. (Default: ``"reflect"``)
        power: Exponent of the magnitude: 2 for power, 1 for magnitude. (Default: ``2.0``)
        chunk_frames: Frames per chunk; ``None`` picks by device (see
            :func:`frame_chunk_size`).

    Returns:
        Tensor of shape ``(..., n_mels, frames)``, float32, contiguous.
    """
    n_fft = window.shape[-1]
    lead = waveform.shape[:-1]
    x = waveform.reshape(-1, waveform.shape[-1]).float()
    if center:
        x = torch.nn.functional.pad(x.unsqueeze(1), (n_fft // 2, n_fft // 2), mode=pad_mode)
        x = x.squeeze(1)
    if x.shape[-1] < n_fft:
        raise ValueError(
            f"waveform has {waveform.shape[-1]} samples, too short for n_fft={n_fft}"
            + ("" if center else " with center=False")
        )
    frames = x.unfold(-1, n_fft, hop_length)  # (N, frames, n_fft), a view
    n_frames = frames.shape[1]
    step = chunk_frames or frame_chunk_size(x.shape[0], n_frames, n_fft, x.device)
    fb_t = fb.t()  # (n_mels, n_freqs)
    window = window.to(torch.float32)
    out = []
    for start in range(0, n_frames, step):
        spec = torch.fft.rfft(frames[:, start : start + step] * window)  # (N, f, n_freqs)
        ri = torch.view_as_real(spec)
        pw = torch.addcmul(ri[..., 0].square(), ri[..., 1], ri[..., 1])  # |X|^2
        if power != 2.0:
            pw = pw.pow(power / 2.0)
        out.append(torch.matmul(fb_t, pw.transpose(-1, -2)))  # (N, n_mels, f)
    mel = out[0] if len(out) == 1 else torch.cat(out, dim=-1)
    return mel.reshape(*lead, mel.shape[-2], mel.shape[-1])


def amplitude_to_db(
    x: Tensor,
    multiplier: float = 10.0,
    amin: float = 1e-10,
    ref: float = 1.0,
    top_db: float | None = 80.0,
    example_dims: int = 3,
) -> Tensor:
    """Decibels with a ``top_db`` floor computed per example, without host syncs.

    The decibels are ``torchaudio.functional.amplitude_to_DB``, which takes one
    floor per ``(C, F, T)`` block: per example on ``(B, C, F, T)``, but one floor
    shared by the whole batch on a 3-D ``(B, F, T)``. Here the input is viewed
    as ``(examples, ., F, T)`` first, so each example (the last ``example_dims``
    dims) gets its own floor, as if it had been converted alone.

    Args:
        x: Power (``multiplier=10``) or magnitude (``multiplier=20``) tensor of
            shape ``(B, C, F, T)`` (or any shape with ``example_dims`` trailing dims
            per example, ``example_dims`` in 2..``x.ndim``).
        multiplier: 10 for power, 20 for amplitude. (Default: ``10.0``)
        amin: Floor before the log. (Default: ``1e-10``)
        ref: Reference value mapped to 0 dB. (Default: ``1.0``)
        top_db: Dynamic range kept below each example's maximum; ``None`` keeps all.
        example_dims: Trailing dims that make up one example. (Default: ``3``)

    Returns:
        Tensor of the same shape, float32.
    """
    if not 2 <= example_dims <= x.ndim:
        raise ValueError(f"example_dims must be in [2, x.ndim = {x.ndim}], got {example_dims}")
    lead, middle = x.shape[: x.ndim - example_dims], x.shape[x.ndim - example_dims: -2]
    view = (math.prod(lead), math.prod(middle), *x.shape[-2:])  # (examples, ., F, T)
    db = torchaudio.functional.amplitude_to_DB(x.float().reshape(view), multiplier, amin,
                                               math.log10(max(amin, ref)), top_db)
    return db.reshape(x.shape)
