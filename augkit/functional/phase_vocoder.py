"""Batched STFT, phase vocoder and overlap-add: time stretch and pitch shift per example.

Every example of a batch gets its own rate, with no loop over examples and no
host sync (no ``torch.istft``, whose window check syncs): the STFT is framed
with ``unfold`` and ``rfft``, the vocoder reads fractional frame positions with
row gathers and locks phases to spectral peaks (identity phase locking, as a
parallel scan), and the inverse is ``irfft`` plus an overlap-add normalised by
a window envelope that is the same for every example.

Memory: the input's magnitudes and phases, two float32 tensors of ``B * C *
(T // hop + 2) * (n_fft // 2 + 1)``, and about twenty such tensors for the
output frames (fewer on CPU, where the output frames go in chunks).

Conventions: ``rate > 1`` is faster (shorter), as in
``torchaudio.functional.phase_vocoder``; frames are centred (frame ``m`` at
sample ``m * hop_length``) with zero padding, windows are periodic Hann for
analysis and synthesis, and ``hop_length <= n_fft // 2``.

On CPU the frame axis is processed in chunks of :data:`CPU_CHUNK_FRAMES` (a
loop over frames, not examples: it keeps the working set in cache, 2-3x
faster); elsewhere in one pass. The chunk size does not depend on the batch, so
an example's result does not depend on what else is in its batch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .resample import resample, resample_half_width

__all__ = ["stft", "phase_vocoder", "overlap_add", "time_stretch", "pitch_shift",
           "pitch_shift_n_fft"]

#: Frames per chunk on CPU.
CPU_CHUNK_FRAMES = 32
_TWO_PI = 2 * math.pi


def _step(n: int, device: torch.device) -> int:
    """Frames per chunk: :data:`CPU_CHUNK_FRAMES` on CPU, all of them elsewhere."""
    return CPU_CHUNK_FRAMES if device.type == "cpu" else max(n, 1)


def pitch_shift_n_fft(sample_rate: float) -> int:
    """STFT size for pitch shifting at ``sample_rate``: the power of two of 32-64 ms.

    ``2 ** ceil(log2(0.032 * sample_rate))``: 512 at 16 kHz (32 ms), 1024 at
    22.05 kHz (46 ms), 2048 at 44.1 and 48 kHz (46 and 43 ms).
    """
    return 1 << max(2, math.ceil(math.log2(0.032 * sample_rate)))


def stft(x: Tensor, window: Tensor, hop_length: int) -> Tensor:
    """Centred STFT with zero padding, as ``torch.stft(center=True, pad_mode="constant")``.

    Args:
        x: Signals ``(..., T)``, float32.
        window: Analysis window ``(n_fft,)``.
        hop_length: Hop between frames.

    Returns:
        complex64 tensor ``(..., T // hop_length + 1, n_fft // 2 + 1)``: frames, then bins.
    """
    n_fft = window.shape[-1]
    padded = torch.nn.functional.pad(x, (n_fft // 2, n_fft // 2))
    frames = padded.unfold(-1, n_fft, hop_length)
    n = frames.shape[-2]
    step = _step(n, x.device)
    out = [torch.fft.rfft(frames[..., s : s + step, :] * window) for s in range(0, n, step)]
    return out[0] if len(out) == 1 else torch.cat(out, dim=-2)


def _polar_frames(x: Tensor, window: Tensor, hop_length: int) -> tuple[Tensor, Tensor]:
    """Magnitude and phase of :func:`stft` frames, plus one silent frame after the last.

    Unlike :func:`stft`, the frames run to the first one centred at or after
    sample ``T``, so the input's last samples are covered as well as its first.

    Args:
        x: Signals ``(R, T)``, float32 or float64.
        window: Analysis window ``(n_fft,)``, ``x``'s dtype.
        hop_length: Hop between frames.

    Returns:
        ``(mag, phase)``, each ``(R, ceil(T / hop_length) + 2, n_fft // 2 + 1)``, ``x``'s
        dtype.
    """
    n_fft, t = window.shape[-1], x.shape[-1]
    m = -(-t // hop_length) + 1
    right = (m - 1) * hop_length + n_fft - n_fft // 2 - t
    frames = torch.nn.functional.pad(x, (n_fft // 2, right)).unfold(-1, n_fft, hop_length)
    m, f = frames.shape[-2], n_fft // 2 + 1
    step = _step(m, x.device)
    if _needs_grad(x):  # out= below is not differentiable: the same values, out of place
        parts = [torch.view_as_real(torch.fft.rfft(frames[:, s : s + step] * window))
                 for s in range(0, m, step)]
        ri = torch.nn.functional.pad(torch.cat(parts, dim=1), (0, 0, 0, 0, 0, 1))
        re, im = ri[..., 0], ri[..., 1]
        return torch.hypot(re, im), torch.atan2(im, re)
    mag, phase = x.new_zeros((2, x.shape[0], m + 1, f)).unbind(0)
    for s in range(0, m, step):
        e = min(s + step, m)
        ri = torch.view_as_real(torch.fft.rfft(frames[:, s:e] * window))
        # hypot and atan2 are several times faster on contiguous parts.
        re, im = ri[..., 0].contiguous(), ri[..., 1].contiguous()
        torch.hypot(re, im, out=mag[:, s:e])
        torch.atan2(im, re, out=phase[:, s:e])
    return mag, phase


def _needs_grad(*tensors: Tensor) -> bool:
    """Whether autograd records ops on ``tensors``: then no ``out=`` and no in-place writes."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _nearest_peak(mags: Tensor) -> Tensor:
    """For each bin, the nearest spectral peak of its frame: int64 like ``mags`` ``(..., F)``.

    A peak is a bin above both neighbours and within 80 dB of its frame's
    maximum; bins of a frame without peaks (silence) map to themselves. Ties
    go to the lower peak.
    """
    f = mags.shape[-1]
    floor = mags.amax(-1, keepdim=True) * 1e-4
    left = torch.nn.functional.pad(mags[..., :-1], (1, 0), value=-1.0)
    right = torch.nn.functional.pad(mags[..., 1:], (0, 1), value=-1.0)
    peak = (mags > left) & (mags >= right) & (mags > floor)
    bins = torch.arange(f, device=mags.device).expand_as(mags)
    below = torch.cummax(torch.where(peak, bins, -f), -1).values  # nearest peak <= k
    above = torch.cummin(torch.where(peak, bins, 2 * f).flip(-1), -1).values.flip(-1)
    nearest = torch.where(bins - below <= above - bins, below, above)
    return torch.where(nearest.abs() < f, nearest, bins)


def _compose_scan(index: Tensor, offset: Tensor) -> tuple[Tensor, Tensor]:
    """Inclusive scan of the maps ``v -> v[index[k]] + offset[k]`` along dim 1.

    Element ``k`` of the result is maps ``0..k`` applied in order (0 first).
    Applying ``a`` then ``b`` is ``v -> v[a.index[b.index]] + a.offset[b.index] +
    b.offset``, an associative composition, so ``log2(n)`` doubling steps of
    gathers replace a loop over frames (Hillis-Steele).
    """
    n, d = index.shape[1], 1
    while d < n:
        later = index[:, d:]
        offset = torch.cat([offset[:, :d], torch.gather(offset[:, :-d], -1, later)
                            + offset[:, d:]], dim=1)
        index = torch.cat([index[:, :d], torch.gather(index[:, :-d], -1, later)], dim=1)
        d *= 2
    return index, offset


def _vocoder_chunks(mag: Tensor, phase: Tensor, rate: Tensor, n_frames: int,
                    phase_locking: bool = True):
    """Yield the phase vocoder's output frames in chunks: ``(start, (R, n, F) complex)``.

    ``mag`` and ``phase`` are ``(R, M + 1, F)`` with a silent last frame, ``R = B * C``.
    """
    rows, m, f = mag.shape[0], mag.shape[1] - 1, mag.shape[2]
    b = rate.shape[0]
    per = rows // max(b, 1)  # rows (channels) per example
    device = mag.device
    mag, phase = mag.reshape(-1, f), phase.reshape(-1, f)  # (R * (M + 1), F): rows to gather
    row_base = (torch.arange(rows, device=device) * (m + 1)).view(b, per, 1)
    bins = torch.arange(f, device=device)
    rate = rate.float()[:, None]
    grad = _needs_grad(mag, phase)
    # Synthesis phase of the frame before the chunk and that frame's advance; output
    # frame 0 keeps analysis frame 0's phase (a zero advance from "frame -1").
    acc = phase.view(rows, m + 1, f)[:, :1]
    advance = torch.zeros_like(acc)
    step = _step(n_frames, device)
    for start in range(0, n_frames, step):
        k = torch.arange(start, min(start + step, n_frames), device=device)
        n = k.shape[0]
        steps = k.float() * rate  # (B, n): analysis positions
        first = steps.floor()
        alpha = (steps - first)[:, None, :, None].expand(b, per, n, 1).reshape(rows, n, 1)
        alpha = alpha.to(mag.dtype)
        first = first.long().unsqueeze(1)
        i0 = (row_base + first.clamp(max=m)).reshape(-1)
        i1 = (row_base + (first + 1).clamp(max=m)).reshape(-1)
        mags = torch.lerp(mag.index_select(0, i0).view(rows, n, f),
                          mag.index_select(0, i1).view(rows, n, f), alpha)
        ph0 = phase.index_select(0, i0).view(rows, n, f)
        # The phase advance over one hop. The synthesis hop equals the analysis hop,
        # so the advance needs no unwrapping: modulo 2 pi it is the phase difference.
        delta = phase.index_select(0, i1).view(rows, n, f) - ph0
        # Advance into frame k: the advance measured at frame k - 1.
        into = torch.cat([advance, delta[:, :-1]], dim=1)
        advance = delta[:, -1:]
        if phase_locking:
            # Identity phase locking: each bin keeps its analysis phase relative
            # to its nearest peak, whose phase advances at the peak's frequency:
            # psi_k(t) = psi_p(t - 1) + into_p(t) + ph0_k(t) - ph0_p(t).
            peak = _nearest_peak(mags)
            offset = torch.gather(into - ph0, -1, peak) + ph0
            if start == 0:  # frame 0 keeps analysis frame 0's phase
                if grad:  # the gather above saved peak for its backward
                    peak = peak.clone()
                peak[:, 0], offset[:, 0] = bins, 0.0
            index, offset = _compose_scan(peak, offset)
            phases = torch.gather(acc.expand(rows, n, f), -1, index) + offset
        else:
            # The standard phase vocoder: every bin accumulates its own advances
            # (the same sequence of additions whatever the chunking).
            phases = torch.cumsum(torch.cat([acc, into], dim=1), dim=1)[:, 1:]
        acc = torch.remainder(phases[:, -1:], _TWO_PI)
        if grad:  # out= and mul_ below are not differentiable
            yield start, torch.polar(mags, phases)
            continue
        res = torch.empty(rows, n, f, 2, device=device, dtype=mags.dtype)
        torch.cos(phases, out=res[..., 0])
        torch.sin(phases, out=res[..., 1])
        yield start, torch.view_as_complex(res.mul_(mags.unsqueeze(-1)))


def phase_vocoder(spec: Tensor, rate: Tensor, n_frames: int,
                  phase_locking: bool = True) -> Tensor:
    """Read ``n_frames`` frames at analysis positions ``k * rate[b]``, phase-coherently.

    Output frame ``k`` takes the magnitudes of analysis frames ``floor(k * rate)``
    and the next one, interpolated linearly, and a phase accumulated over the
    output frames from each step's phase advance: the two analysis frames'
    phase difference (with equal analysis and synthesis hops no unwrapping is
    needed: the unwrapped advance equals it modulo 2 pi). Positions past the
    last analysis frame read silence.

    - ``phase_locking=False``: the standard phase vocoder, every bin a cumsum of
      its own advances, as ``torchaudio.functional.phase_vocoder`` (with one
      rate per example). Bins of one partial drift apart in phase after
      silence or an onset, which loses level and smears onsets (a tone burst
      stretched by 0.5 keeps 12% of its energy).
    - ``phase_locking=True``: identity phase locking (Laroche & Dolson, 1999):
      each bin keeps its analysis phase relative to the nearest spectral peak
      of its frame, and a peak's phase advances from the previous synthesis
      frame's phase at that bin. The recursion runs as a parallel scan over
      frames (``log2`` of the frames doubling steps of gathers, no loop over
      frames), about 1.5x the cost of the standard one. The same burst keeps
      98% of its energy, and onsets stay within a few ms.

    Args:
        spec: STFT ``(B, ..., M, F)`` complex (frames, then ``F = n_fft // 2 + 1`` bins).
        rate: Speed-up per example ``(B,)``, ``> 0`` (``> 1`` is shorter).
        n_frames: Output frames (at the analysis hop).
        phase_locking: Identity phase locking (see above). (Default: ``True``)

    Returns:
        complex64 tensor ``(B, ..., n_frames, F)``.
    """
    lead, m, f = spec.shape[:-2], spec.shape[-2], spec.shape[-1]
    rows = torch.nn.functional.pad(spec.reshape(-1, m, f), (0, 0, 0, 1))
    mag, phase = rows.abs(), rows.angle()
    chunks = _vocoder_chunks(mag, phase, rate, n_frames, phase_locking)
    out = [chunk for _, chunk in chunks]
    y = out[0] if len(out) == 1 else torch.cat(out, dim=1)
    return y.reshape(*lead, n_frames, f)


def _overlap_add_chunks(chunks, rows: int, n_frames: int, window: Tensor, hop_length: int,
                        length: int) -> Tensor:
    """Overlap-add frames given as ``(start, (rows, n, F) complex)`` chunks: ``(rows, length)``.

    Each frame is ``irfft``-ed, windowed, zero-padded to ``r * hop_length``
    (``r = ceil(n_fft / hop_length)``) and cut into ``r`` hop-long pieces; piece
    ``i`` of frame ``k`` is added to block ``k + i`` of the output (a loop over
    the overlap, not over frames). The sum is divided by the window envelope,
    the sum of squared windows at each sample, computed by the same overlap-add:
    one buffer shared by every example. The centre padding is dropped.
    """
    n_fft = window.shape[-1]
    if length - 1 - (n_frames - 1) * hop_length > n_fft // 4:
        raise ValueError(f"{n_frames} frames at hop {hop_length} do not cover {length} samples: "
                         f"the last must lie within n_fft // 4 of the last frame's centre")
    r = -(-n_fft // hop_length)

    def add(y: Tensor, frames: Tensor, start: int) -> None:
        pieces = torch.nn.functional.pad(frames, (0, r * hop_length - n_fft))
        pieces = pieces.view(frames.shape[0], frames.shape[1], r, hop_length)
        for i in range(r):
            y[:, start + i : start + i + frames.shape[1]] += pieces[:, :, i]

    y = window.new_zeros(rows, n_frames + r - 1, hop_length)
    for start, chunk in chunks:
        add(y, torch.fft.irfft(chunk, n=n_fft) * window, start)
    env = window.new_zeros(1, n_frames + r - 1, hop_length)
    add(env, window.square().expand(1, n_frames, n_fft), 0)
    begin = n_fft // 2
    y, env = y.view(rows, -1), env.view(1, -1)
    # Every kept sample lies within n_fft / 4 of a frame centre (hop <= n_fft / 2 and
    # the check above), so the envelope is at least (Hann at n_fft / 4)^2 = 1/4.
    return y[:, begin : begin + length] / env[:, begin : begin + length]


def overlap_add(spec: Tensor, window: Tensor, hop_length: int, length: int) -> Tensor:
    """Inverse of :func:`stft`: ``irfft``, synthesis window, overlap-add, envelope.

    The overlap-add is divided by the sum of squared windows at each sample
    (the window envelope): the same for every example, so one buffer computed
    by the same overlap-add; the centre padding is dropped.

    Args:
        spec: Frames ``(..., n_frames, n_fft // 2 + 1)`` complex; they must cover
            ``length``: sample ``length - 1`` within ``n_fft // 4`` of the last frame's
            centre (true for :func:`stft`'s frames when ``hop_length <= n_fft // 4``).
        window: Synthesis window ``(n_fft,)``.
        hop_length: Hop between frames, at most ``n_fft // 2``.
        length: Output samples.

    Returns:
        float32 tensor ``(..., length)``.
    """
    lead, n_frames = spec.shape[:-2], spec.shape[-2]
    rows = spec.reshape(-1, n_frames, spec.shape[-1])
    step = _step(n_frames, spec.device)
    chunks = ((s, rows[:, s : s + step]) for s in range(0, n_frames, step))
    y = _overlap_add_chunks(chunks, rows.shape[0], n_frames, window, hop_length, length)
    return y.reshape(*lead, length)


def _hann(n_fft: int, device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.hann_window(n_fft, device=device, dtype=dtype)


def time_stretch(x: Tensor, rate: Tensor, length: int, n_fft: int = 512,
                 hop_length: int = 128, phase_locking: bool = True) -> Tensor:
    """Change each example's tempo by ``rate`` keeping its pitch (phase vocoder).

    The output holds the first ``length`` samples of the stretched signal
    (``T / rate`` samples long) and zeros after its end.

    Args:
        x: Waveforms ``(B, ..., T)``, any float dtype (computed in float32; float64
            stays float64). Differentiable in ``x``.
        rate: Speed-up per example ``(B,)``, ``> 0``: ``> 1`` faster and shorter.
        length: Output samples.
        n_fft: STFT size. (Default: ``512``)
        hop_length: STFT hop, at most ``n_fft // 2``. (Default: ``128``)
        phase_locking: See :func:`phase_vocoder`. (Default: ``True``)

    Returns:
        float32 tensor ``(B, ..., length)`` (float64 for float64 input).

    Example:
        >>> x = torch.randn(2, 1, 1600)
        >>> time_stretch(x, torch.tensor([0.8, 1.25]), 1600).shape
        torch.Size([2, 1, 1600])
    """
    t_in = x.shape[-1]
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    window = _hann(n_fft, x.device, dtype)
    rows = x.reshape(-1, t_in).to(dtype)
    mag, phase = _polar_frames(rows, window, hop_length)
    n_frames = -(-length // hop_length) + 1
    chunks = _vocoder_chunks(mag, phase, rate, n_frames, phase_locking)
    y = _overlap_add_chunks(chunks, rows.shape[0], n_frames, window, hop_length, length)
    y = y.view(*x.shape[:-1], length)
    # Zero after the stretched end: output sample j comes from input time j * rate.
    pos = torch.arange(length, device=x.device, dtype=torch.float32)
    inside = pos * rate.float().reshape(-1, *([1] * (x.ndim - 1))) < t_in
    return torch.where(inside, y, 0.0)


def pitch_shift(x: Tensor, semitones: Tensor, max_semitones: float, n_fft: int,
                hop_length: int | None = None, phase_locking: bool = True) -> Tensor:
    """Shift each example's pitch by ``semitones``, keeping its tempo and length.

    A time stretch by ``1 / ratio`` (``ratio = 2 ** (semitones / 12)``) followed by
    reading the result at ``ratio`` times the speed (:func:`resample`), as
    ``librosa.effects.pitch_shift`` and ``torchaudio.functional.pitch_shift`` do,
    for any real number of semitones.

    Args:
        x: Waveforms ``(B, ..., T)``, any float dtype (computed in float32; float64
            stays float64). Differentiable in ``x``.
        semitones: Shift per example ``(B,)``.
        max_semitones: Upper bound of ``semitones`` (a Python number, from the
            configuration): it sets the intermediate length and the resampler's taps.
        n_fft: STFT size, e.g. :func:`pitch_shift_n_fft` of the sample rate.
        hop_length: STFT hop. (Default: ``n_fft // 4``)
        phase_locking: See :func:`phase_vocoder`. (Default: ``True``)

    Returns:
        float32 tensor ``(B, ..., T)`` (float64 for float64 input).

    Example:
        >>> x = torch.randn(2, 1, 1600)
        >>> pitch_shift(x, torch.tensor([-2.5, 0.37]), 4.0, n_fft=512).shape
        torch.Size([2, 1, 1600])
    """
    hop_length = hop_length or n_fft // 4
    t = x.shape[-1]
    ratio = torch.exp2(semitones.float() / 12.0)
    max_ratio = 2.0 ** (max_semitones / 12.0)
    # The resampler reads up to (T - 1) * ratio plus its kernel's half-width.
    length = math.ceil((t - 1) * max_ratio) + resample_half_width(max_ratio) + 2
    stretched = time_stretch(x, 1.0 / ratio, length, n_fft, hop_length, phase_locking)
    return resample(stretched, ratio, t, max_factor=max_ratio)
