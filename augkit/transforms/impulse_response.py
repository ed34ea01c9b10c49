"""Convolution with a room impulse response from a bank (reverberation)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import functional as F
from ..banks import bank_clips, bank_on
from ._base import Params, RandomTransform, check_int


class ImpulseResponse(RandomTransform):
    """Convolve each example with an impulse response drawn from a bank (reverberation).

    Per example, one impulse response (IR) of the bank, shared by its channels,
    applied by one batched FFT convolution (real FFTs of the input and of the
    gathered IRs at a length ``>= T + L - 1``, a product, one inverse FFT:
    :func:`augkit.functional.fft_convolve`). The output keeps the
    input's length and timing: the full convolution is read from each IR's
    peak (its direct path, found with ``argmax`` on the device), so the dry
    signal does not move in time and the reverberant tail past ``T`` is cut.
    With ``lengths``, the samples past each example's length stay as they are.

    Level: every IR is normalised to unit energy (sum of squares 1) at
    construction, so a broadband (white) input keeps its power on average; a
    delta IR returns the input.

    The bank is decoded once, at construction, zero-padded to the longest IR
    ``L`` and kept in a non-persistent buffer ``(N, L)``: ``.to(device)`` moves
    it, ``state_dict`` leaves it out. From a folder, every audio file
    (recursively) is decoded with soundfile, averaged to mono and resampled to
    ``sample_rate``; unreadable, non-finite and silent files are skipped with one
    warning naming them (see :func:`augkit.banks.load_audio_folder`). A bank with
    NaN or inf samples or a silent IR is refused at construction, naming it.
    ``irs`` has no default: the bank is the transform's data, and which rooms suit
    a task is the user's choice; :func:`augkit.banks.synthetic_room_irs` generates
    one without recordings.
    The FFT length grows with ``L``: trim long silent tails from measured IRs.

    Args:
        irs: Impulse responses: a float tensor ``(N, L)``, a list of 1-D float
            tensors, or a folder of audio files.
        sample_rate: Rate of the input in Hz; required when ``irs`` is a folder.
            (Default: ``None``)
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One IR for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged.

    Example:
        >>> delta = torch.zeros(1, 8)
        >>> delta[0, 3] = 1.0
        >>> x = torch.arange(6.0).view(1, 1, 6)
        >>> y = ImpulseResponse(delta, p=1.0)(x)
        >>> torch.allclose(y, x, atol=1e-5)
        True
    """

    ndims = (3,)
    expects = "waveforms (B, C, T)"
    gate = "output"
    uses_lengths = True
    cases = (dict(kwargs=dict(irs=torch.randn(3, 64, generator=torch.Generator().manual_seed(3))
                              * torch.exp(-torch.arange(64) / 12.0)),
                  input="wave", changes="always"),)

    def __init__(self, irs, sample_rate: int | None = None, p: float = 0.5,
                 same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.sample_rate = None if sample_rate is None else check_int("sample_rate",
                                                                      sample_rate, 1)
        clips = bank_clips(irs, self.sample_rate, "ImpulseResponse", "irs", each_audible=True)
        bank = nn.utils.rnn.pad_sequence(clips, batch_first=True)  # (N, L), zero-padded
        # > 0 and finite: every IR has a sample of at least SILENT_PEAK, all are float32.
        energy = bank.double().square().sum(-1)
        self.num_irs = int(bank.shape[0])
        self.register_buffer("irs", (bank.double() / energy.sqrt().unsqueeze(-1)).float(),
                             persistent=False)

    def sample(self, shape, n, device, generator) -> Params:
        bank_on(self, "irs", device)
        count = torch.full((n,), self.num_irs, dtype=torch.long, device=device)
        return {"index": F.randint_below(count, device, generator)}

    def apply(self, x: Tensor, params: Params, lengths: Tensor | None = None) -> Tensor:
        y = F.fft_convolve(x, self.irs[params["index"]]).to(x.dtype)
        mask = F.valid_mask(x, lengths)
        return y if mask is None else torch.where(mask, y, x)

    def extra_repr(self) -> str:
        return (f"irs={self.num_irs}x{self.irs.shape[-1]}, sample_rate={self.sample_rate}, "
                + super().extra_repr())
