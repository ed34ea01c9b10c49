"""The small base of the deterministic normalisers (not random transforms)."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from ._base import check_ndim


class Normalizer(nn.Module):
    """A deterministic ``nn.Module`` that runs the same in ``train()`` and ``eval()``.

    Unlike a :class:`~augkit.RandomTransform` it is not an identity in
    ``eval()``: it is part of the model's input pipeline. It takes ``lengths``
    (valid samples or frames per example, ``(B,)``), and :class:`~augkit.Compose`
    passes them on (``takes_lengths``). No Python loop over examples, no host sync.
    """

    #: Compose calls the step as ``step(x, lengths=lengths)``; lengths pass through.
    takes_lengths: ClassVar[bool] = True
    #: Input ranks the module accepts, and how to describe them in errors.
    ndims: ClassVar[tuple[int, ...]] = (3, 4)
    expects: ClassVar[str] = "a spectrogram batch (B, C, F, T) or (B, F, T)"

    def check(self, x: Tensor, lengths: Tensor | None) -> None:
        name = type(self).__name__
        check_ndim(name, x, self.ndims, self.expects)
        if not x.is_floating_point():
            raise TypeError(f"{name} expects a floating-point tensor, got {x.dtype}")
        if lengths is not None and (not isinstance(lengths, Tensor) or lengths.ndim != 1
                                    or lengths.shape[0] != x.shape[0]):
            shape = tuple(lengths.shape) if isinstance(lengths, Tensor) else type(lengths)
            raise ValueError(f"{name}: lengths must be a (B,) = ({x.shape[0]},) tensor, "
                             f"got {shape}")

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        raise NotImplementedError
