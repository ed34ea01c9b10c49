"""Shift each example's features so that its loudest bin is 0 dB."""

from __future__ import annotations

from torch import Tensor

from .. import functional as F
from ._normalizer import Normalizer


class MaxNormalize(Normalizer):
    """Subtract each example's maximum over ``(C, F, T)``: the loudest bin becomes 0.

    For features in dB (or dB times a scale). Deterministic, the same in
    ``train()`` and ``eval()``. ``MelFrontend(log=None)`` (or any power
    spectrogram) -> ``AmplitudeToDB(top_db=80)`` -> ``MaxNormalize()`` equals
    ``librosa.power_to_db(S, ref=np.max, top_db=80)`` applied to each example
    ``S`` ``(C, F, T)`` alone.

    With ``lengths`` the maximum is taken over the valid frames only, and the
    whole example, padding included, is shifted by it (a dB floor in the padding
    stays the same distance below the content). An example with no valid frame
    is left as it is.

    Shape:
        ``(B, C, F, T)`` -> ``(B, C, F, T)``, same dtype; ``lengths``: ``(B,)``
        valid frames.

    Example:
        >>> MaxNormalize()(torch.tensor([[[[-10.0, -30.0], [-20.0, -50.0]]]]))
        tensor([[[[  0., -20.],
                  [-10., -40.]]]])
    """

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, C, F, T)`` -> ``(B, C, F, T)``; ``lengths`` ``(B,)`` valid frames."""
        self.check(x, lengths)
        return F.max_normalize(x, lengths)
