"""Shoebox room impulse responses by the image-source method, batched on the device.

Allen & Berkley (1979): a source at ``s`` in a room ``[0, Lx] x [0, Ly] x [0, Lz]``
has, along each axis, images at ``(1 - 2q) s + 2 n L`` (``q`` in ``{0, 1}``,
``n`` an integer) after ``|n - q|`` reflections off the wall at 0 and ``|n|``
off the wall at ``L``. Each image contributes ``beta ** k / (4 pi d)`` at delay
``d / c`` (``k`` reflections, ``beta = sqrt(1 - alpha)`` the walls' amplitude
reflection for energy absorption ``alpha``, ``d`` its distance to the
microphone). The table of ``(n, q)`` up to a reflection order depends on nothing
else, so it is built once; the rooms, positions and absorptions are tensors
``(B, ...)`` and every example's response comes from the same few batched ops.

Past the order's reach the image set thins out; :func:`room_impulse_response`
can fill it with a stochastic tail: Gaussian noise at the images' own energy
per sample where the tail starts, decaying as Eyring's reverberation time says,
scaled by the share of images that the order leaves out at each time. (The
full image model of a shoebox with uniform walls decays somewhat slower than
Eyring's formula at late times: grazing paths meet few walls.)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["SPEED_OF_SOUND", "eyring_rt60", "image_table", "room_impulse_response"]

#: Speed of sound in m/s (pyroomacoustics' default too).
SPEED_OF_SOUND = 343.0


def image_table(max_order: int) -> tuple[Tensor, Tensor]:
    """Image indices up to ``max_order`` reflections, and those of order ``max_order + 1``.

    Returns:
        ``(images, shell)``: int64 ``(K, 7)`` tables of rows
        ``(nx, ny, nz, qx, qy, qz, order)``, ``order = sum |n - q| + |n|``;
        ``images`` holds every order ``<= max_order`` (the direct path first),
        ``shell`` every order ``max_order + 1`` (the first ones left out).
    """
    r = torch.arange(-max_order - 1, max_order + 2)
    n = torch.cartesian_prod(r, r, r)  # (R, 3)
    q = torch.cartesian_prod(*[torch.tensor([0, 1])] * 3)  # (8, 3)
    n = n.repeat_interleave(8, 0)
    q = q.repeat(r.numel() ** 3, 1)
    order = ((n - q).abs() + n.abs()).sum(1, keepdim=True)
    rows = torch.cat([n, q, order], 1)
    images = rows[order[:, 0] <= max_order]
    images = images[torch.argsort(images[:, 6], stable=True)]
    return images, rows[order[:, 0] == max_order + 1]


def eyring_rt60(room: Tensor, absorption: Tensor, c: float = SPEED_OF_SOUND) -> Tensor:
    """Eyring's reverberation time ``24 ln(10) V / (c S (-ln(1 - alpha)))`` in s, ``(B,)``.

    Args:
        room: Room dimensions in m, ``(B, 3)``.
        absorption: Energy absorption of the walls, ``(B,)`` in ``(0, 1)``.
        c: Speed of sound in m/s.
    """
    lx, ly, lz = room.unbind(-1)
    volume = lx * ly * lz
    surface = 2 * (lx * ly + ly * lz + lz * lx)
    return 24 * math.log(10) * volume / (c * surface * -torch.log1p(-absorption))


def _distances(table: Tensor, room: Tensor, source: Tensor, mic: Tensor) -> Tensor:
    """Image-to-microphone distances ``(B, K)`` for a table of rows ``(n, q, order)``."""
    n, q = table[:, 0:3].to(room.dtype), table[:, 3:6].to(room.dtype)
    images = (1 - 2 * q) * source.unsqueeze(1) + 2 * n * room.unsqueeze(1)  # (B, K, 3)
    return torch.linalg.vector_norm(images - mic.unsqueeze(1), dim=-1)


def room_impulse_response(room: Tensor, source: Tensor, mic: Tensor, absorption: Tensor,
                          sample_rate: float, length: int, images: Tensor,
                          shell: Tensor | None = None, noise: Tensor | None = None,
                          c: float = SPEED_OF_SOUND, bin_seconds: float = 0.008) -> Tensor:
    """Impulse responses of shoebox rooms, one per example, float32 ``(B, length)``.

    Every image of ``images`` adds ``beta ** order / (4 pi d)`` at the sample
    nearest its delay ``d / c * sample_rate`` (sample 0: emission; one
    ``scatter_add``, no loop over examples or images); images past ``length``
    are dropped. With ``noise`` (and ``shell``), a late tail is added from the
    time the first image of order ``max_order + 1`` would arrive: ``noise``
    times ``sqrt(P(t) * (1 - share))``: ``P(t) ~ 10 ** (-6 t / RT60)`` with
    ``RT60`` Eyring's (:func:`eyring_rt60`), its level the images' own energy per
    sample in the last ``bin_seconds`` before the tail starts (the model's
    ``c / (4 pi V fs)`` when that is empty), and ``share`` the images found in
    each ``bin_seconds`` shell over the ``4 pi r^2 dr / V`` expected there.

    Args:
        room: Dimensions ``(Lx, Ly, Lz)`` in m, ``(B, 3)``.
        source: Source positions in m inside the room, ``(B, 3)``.
        mic: Microphone positions in m inside the room, ``(B, 3)``.
        absorption: Energy absorption of all six walls, ``(B,)`` in ``[0, 1)``.
        sample_rate: Samples per second.
        length: Samples of the response.
        images: Image table of :func:`image_table`, ``(K, 7)`` on the device.
        shell: The next order's table (for the tail). (Default: no tail)
        noise: Standard normal noise ``(B, length)`` for the tail. (Default: no tail)
        c: Speed of sound in m/s.
        bin_seconds: Shell width for the share of images found.

    Returns:
        float32 ``(B, length)``; the direct path at sample ``round(|s - m| / c * fs)``.
    """
    room, source, mic = room.float(), source.float(), mic.float()
    absorption = absorption.float()
    b = room.shape[0]
    d = _distances(images, room, source, mic).clamp_min(1e-3)  # (B, K)
    log_beta = 0.5 * torch.log1p(-absorption.clamp(0.0, 1 - 1e-6)).unsqueeze(-1)
    amp = torch.exp(images[:, 6].to(room.dtype) * log_beta) / (4 * math.pi * d)
    index = torch.round(d * (sample_rate / c)).long()
    inside = index < length
    rir = torch.zeros(b, length, device=room.device, dtype=torch.float32)
    rir.scatter_add_(1, index.clamp_max(length - 1), torch.where(inside, amp, 0.0))
    if noise is None or shell is None:
        return rir
    # The late tail: the image model's expected energy per sample, times the share
    # of images the order leaves out, from the first one left out on.
    volume = room.prod(-1, keepdim=True)  # (B, 1)
    start = torch.floor(_distances(shell, room, source, mic).amin(-1, keepdim=True)
                        * (sample_rate / c))  # (B, 1) samples
    width = max(1, round(bin_seconds * sample_rate))
    bins = -(-length // width)
    found = torch.zeros(b, bins, device=room.device, dtype=torch.float32)
    found.scatter_add_(1, (index // width).clamp_max(bins - 1), inside.float())
    edge = torch.arange(bins + 1, device=room.device, dtype=torch.float32) * (width * c
                                                                               / sample_rate)
    expected = (4 * math.pi / 3) * (edge[1:] ** 3 - edge[:-1] ** 3) / volume  # (B, bins)
    pos = torch.arange(length, device=room.device)
    missing = (1 - found / expected).clamp(0.0, 1.0)[:, pos // width]  # (B, length)
    rt60 = eyring_rt60(room, absorption, c).unsqueeze(-1)
    t = pos.to(torch.float32) / sample_rate
    power = c / (4 * math.pi * volume * sample_rate) * torch.pow(10.0, -6 * t / rt60)
    # Level: the images' own energy per sample over the last (complete) bin before
    # the tail starts, after the direct path; the model's where that bin is empty.
    direct = torch.round(torch.linalg.vector_norm(source - mic, dim=-1, keepdim=True)
                         * (sample_rate / c))
    window = (pos >= torch.maximum(start - width, direct + 1)) & (pos < start)
    count = window.sum(-1, keepdim=True)
    measured = torch.where(window, rir.square(), 0.0).sum(-1, keepdim=True)
    model = torch.where(window, power, 0.0).sum(-1, keepdim=True)
    scale = torch.where((count > 0) & (measured > 0), measured / model.clamp_min(1e-30), 1.0)
    tail = noise.float() * torch.sqrt(scale * power * missing)
    return rir + torch.where(pos >= start, tail, 0.0)
