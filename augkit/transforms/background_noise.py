"""Additive background noise from a bank of recordings, at a per-example SNR."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ..banks import bank_clips, bank_on, pack
from ._base import Params, RandomTransform, check_int, check_range


class BackgroundNoise(RandomTransform):
    """Add a clip of recorded (or generated) noise to each example at a per-example SNR.

    Per example: a noise clip from the bank, an offset into it and an SNR
    ``snr_db ~ U(snr_db)``. The clip is read from its offset for the input's
    length ``T``: a clip at least ``T`` long is read without wrapping (offsets
    uniform in ``[0, len - T]``); **a clip shorter than the input loops** (read
    ``clip[(offset + t) % len]``, offsets uniform in ``[0, len)``), with a seam
    wherever the clip does not loop smoothly. The same (mono) noise goes to every
    channel, scaled to the SNR of the example's power (mean square over its
    channels and valid samples: with ``lengths`` the padding stays as it is) by
    :func:`augkit.functional.add_noise_snr`; a silent example stays silent.

    The bank is decoded once, at construction, and packed end to end (one flat
    float32 buffer, plus start and length per clip) in non-persistent buffers:
    ``.to(device)`` moves it, ``state_dict`` leaves it out. From a folder, every
    audio file (recursively) is decoded with soundfile, averaged to mono and
    resampled to ``sample_rate``; unreadable, non-finite and silent files are
    skipped with one warning naming them (see :func:`augkit.banks.load_audio_folder`).
    A bank with NaN or inf samples, or a silent one, is refused at construction
    (it would add nothing); silent clips among others are named in a warning.
    ``noises`` has no default: the bank is the transform's data, and which noise
    suits a task is the user's choice; :func:`augkit.banks.colored_noise_bank`
    generates one without recordings.

    Args:
        noises: Noise clips: a float tensor ``(N, L)``, a list of 1-D float tensors,
            or a folder of audio files.
        snr_db: SNR range in dB. (Default: ``(3, 30)``)
        sample_rate: Rate of the input in Hz; required when ``noises`` is a folder.
            (Default: ``None``)
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One draw (clip, offset, SNR) for the whole batch.
            (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged.

    Example:
        >>> bank = torch.randn(3, 100)
        >>> g = torch.Generator().manual_seed(0)
        >>> BackgroundNoise(bank, snr_db=10, p=1.0)(torch.ones(2, 1, 250), generator=g).shape
        torch.Size([2, 1, 250])
    """

    ndims = (3,)
    expects = "waveforms (B, C, T)"
    identity = {"snr_db": float("inf")}
    uses_lengths = True
    cases = (dict(kwargs=dict(noises=torch.randn(3, 200, generator=torch.Generator()
                                                 .manual_seed(1))),
                  input="wave", changes="always"),
             dict(kwargs=dict(noises=torch.randn(4, 700, generator=torch.Generator()
                                                 .manual_seed(2)), snr_db=(0, 5)),
                  input="wave", changes="always"))

    def __init__(self, noises, snr_db: tuple[float, float] | float = (3.0, 30.0),
                 sample_rate: int | None = None, p: float = 0.5,
                 same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.snr_db = check_range("snr_db", snr_db)
        self.sample_rate = None if sample_rate is None else check_int("sample_rate",
                                                                      sample_rate, 1)
        clips = bank_clips(noises, self.sample_rate, "BackgroundNoise", "noises",
                           each_audible=False)
        flat, starts, lengths = pack(clips)
        self.num_noises = int(starts.numel())
        self.register_buffer("noise_flat", flat, persistent=False)
        self.register_buffer("noise_starts", starts, persistent=False)
        self.register_buffer("noise_lengths", lengths, persistent=False)

    def sample(self, shape, n, device, generator) -> Params:
        bank_on(self, "noise_flat", device)
        t = shape[-1]
        count = torch.full((n,), self.num_noises, dtype=torch.long, device=device)
        index = F.randint_below(count, device, generator)
        length = self.noise_lengths[index]
        room = torch.where(length >= t, length - t + 1, length)
        return {"snr_db": F.uniform((n,), *self.snr_db, device, generator),
                "index": index, "offset": F.randint_below(room, device, generator)}

    def apply(self, x: Tensor, params: Params, lengths: Tensor | None = None) -> Tensor:
        index = params["index"]
        noise = F.looped_segments(self.noise_flat, self.noise_starts[index],
                                self.noise_lengths[index], params["offset"], x.shape[-1])
        noise = noise.unsqueeze(1).expand(x.shape)  # our temporary (a view for channels > 1)
        return F.add_noise_snr(x, noise, params["snr_db"], lengths, reuse_noise=True)

    def extra_repr(self) -> str:
        return (f"noises={self.num_noises}, snr_db={self.snr_db}, "
                f"sample_rate={self.sample_rate}, " + super().extra_repr())
