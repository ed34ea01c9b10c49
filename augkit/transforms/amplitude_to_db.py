"""Decibels with a per-example ``top_db`` floor, as a module for chains."""

from __future__ import annotations

from torch import Tensor, nn

from .. import functional as F


class AmplitudeToDB(nn.Module):
    """Power or magnitude spectrogram -> decibels, each example with its own floor.

    ``torchaudio.functional.amplitude_to_DB`` with the ``top_db`` floor computed
    per example (the last three dims, or two for ``(B, F, T)``), on the device,
    with no host sync (:func:`augkit.functional.amplitude_to_db`); called as is,
    torchaudio shares one floor across a 3-D batch. It lets
    spectrogram-domain steps sit between the mel projection and the log:
    ``Compose([MelFrontend(sr, log=None), <power-mel steps>, AmplitudeToDB(),
    <log-mel steps>])``; ``MelFrontend(log="db")`` is the short form of the
    first and third.

    Args:
        stype: ``"power"`` (``10 log10``) or ``"magnitude"`` (``20 log10``).
            (Default: ``"power"``)
        top_db: Dynamic range kept below each example's maximum; ``None`` keeps
            all. (Default: ``80.0``)
        ref: Value mapped to 0 dB. (Default: ``1.0``)
        amin: Floor before the log. (Default: ``1e-10``)
        scale: Multiply the result by this, e.g. ``1 / 20`` to give a network
            inputs of order one. (Default: ``1.0``)

    Shape:
        ``(B, C, F, T)`` -> ``(B, C, F, T)``, float32.

    Example:
        >>> AmplitudeToDB()(torch.full((1, 1, 2, 2), 100.0))
        tensor([[[[20., 20.],
                  [20., 20.]]]])
    """

    #: The time axis is unchanged: :class:`Compose` keeps ``lengths`` (valid frames).
    keeps_lengths = True

    def __init__(self, stype: str = "power", top_db: float | None = 80.0, ref: float = 1.0,
                 amin: float = 1e-10, scale: float = 1.0) -> None:
        super().__init__()
        if stype not in ("power", "magnitude"):
            raise ValueError(f"stype must be 'power' or 'magnitude', got {stype!r}")
        if top_db is not None and not top_db >= 0:
            raise ValueError(f"top_db must be >= 0 or None, got {top_db!r}")
        if not ref > 0 or not amin > 0:
            raise ValueError(f"ref and amin must be > 0, got ref={ref!r}, amin={amin!r}")
        self.stype, self.top_db, self.ref, self.amin = stype, top_db, float(ref), float(amin)
        self.scale = float(scale)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, F, T)`` (or ``(B, F, T)``) -> decibels of the same shape, float32."""
        if not isinstance(x, Tensor) or x.ndim < 3:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"AmplitudeToDB expects a spectrogram (B, C, F, T), got {shape}")
        db = F.amplitude_to_db(x, 10.0 if self.stype == "power" else 20.0, self.amin, self.ref,
                               self.top_db, example_dims=x.ndim - 1)
        return db if self.scale == 1.0 else db * self.scale

    def extra_repr(self) -> str:
        return (f"stype={self.stype!r}, top_db={self.top_db}, ref={self.ref}, amin={self.amin}"
                + ("" if self.scale == 1.0 else f", scale={self.scale}"))
