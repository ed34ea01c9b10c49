"""Multi-view batches: several independently augmented views of every example."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ._base import Params, RandomTransform, check_int


def _tile(t: Tensor, n: int) -> Tensor:
    """``n`` copies of ``t`` end to end along dim 0 (view-major): ``(B, ...) -> (n*B, ...)``."""
    return t.repeat(n, *([1] * (t.ndim - 1)))


class Repeat(nn.Module):
    """Run a chain on ``n_views`` copies of the batch: ``(B, ...) -> (n_views * B, ...)``.

    The batch is tiled ``n_views`` times and the chain (a :class:`Compose` or a
    single :class:`RandomTransform`) runs **once** on the tiled batch, so every
    copy draws its own per-example parameters: the views of an example are
    independent augmentations of it, from one call with one ``generator``.
    Targets and ``lengths`` are tiled alike and go through the chain's own
    target handling (one-hot, :class:`Mixup`, :class:`CutMix`).

    **Order: view-major**, as SpeechBrain's ``Augmenter`` concatenates
    (``repeat_augment`` copies after the ``concat_original`` one): row
    ``v * B + i`` is view ``v`` of example ``i``, so ``y.view(V, B, ...)[v]`` is
    view ``v`` of the whole batch, and example-major order is
    ``y.view(V, B, ...).transpose(0, 1)``.

    ``include_original=True`` puts one more view first (``V = n_views + 1``):
    the chain with every random step's ``p`` set to 0, i.e. what an example
    not drawn gets (the input, a centre crop for crops, its one-hot target)
    after the deterministic steps (the frontend). It costs one more chain call
    on ``B`` examples.

    Steps that draw for the batch as a whole (Mixup's partner permutation)
    draw once over all ``n_views * B`` rows: partners may be other views, of
    other examples or of the same one (the targets stay right either way).
    A step with ``same_on_batch`` gives every view the same draw.

    In ``eval()`` the chain runs once on the batch, without copies: ``(B, ...)``.

    Args:
        chain: A :class:`Compose` or a :class:`RandomTransform`: any module
            called as ``chain(x, params, generator, target=, lengths=)``.
        n_views: Augmented views per example, ``>= 1``. (Default: ``2``)
        include_original: Put the un-augmented view first. (Default: ``False``)

    Shape:
        - ``x``: ``(B, ...)``, what ``chain`` takes; ``target``: ``(B,)`` or
          ``(B, K)``; ``lengths``: ``(B,)``.
        - Returns ``(V * B, ...)`` (what ``chain`` returns, ``V`` views), or
          ``(y, target)`` with ``target`` ``(V * B,)`` or ``(V * B, K)``.

    Example:
        >>> views = Repeat(Compose([Gain(p=1.0), Mixup(num_classes=3)]), n_views=2,
        ...                include_original=True)
        >>> y, t = views(torch.randn(4, 1, 8000), target=torch.tensor([0, 1, 2, 0]))
        >>> tuple(y.shape), tuple(t.shape)
        ((12, 1, 8000), (12, 3))
    """

    def __init__(self, chain: nn.Module, n_views: int = 2, include_original: bool = False
                 ) -> None:
        super().__init__()
        if not isinstance(chain, nn.Module):
            raise ValueError(f"Repeat needs a Compose or a RandomTransform, got "
                             f"{type(chain).__name__}")
        self.chain = chain
        self.n_views = check_int("n_views", n_views, 1)
        self.include_original = bool(include_original)

    @property
    def views(self) -> int:
        """Blocks of ``B`` rows in the output: ``n_views`` (+ 1 with the original)."""
        return self.n_views + self.include_original

    @property
    def last_params(self) -> Params | Mapping[str, Params] | None:
        """The chain's ``last_params`` for the tiled batch; replay them with ``params=``."""
        return getattr(self.chain, "last_params", None)

    def _call(self, x, params, generator, target, lengths):
        if target is None:
            return self.chain(x, params, generator, lengths=lengths), None
        return self.chain(x, params, generator, target=target, lengths=lengths)

    def _original(self, x, generator, target, lengths):
        """The chain with every random step at ``p = 0``: examples not drawn."""
        steps = [m for m in self.chain.modules() if isinstance(m, RandomTransform)]
        saved = [m.p for m in steps]
        try:
            for m in steps:
                m.p = 0.0
            return self._call(x, None, generator, target, lengths)
        finally:
            for m, p in zip(steps, saved, strict=True):
                m.p = p

    def forward(self, x: Tensor, params: Params | Mapping[str, Params] | None = None,
                generator: torch.Generator | None = None, *, target: Tensor | None = None,
                lengths: Tensor | None = None):
        """Augment ``n_views`` copies of ``x`` in one chain call.

        Args:
            x: Input batch ``(B, ...)``.
            params: The chain's parameters for the tiled batch (:attr:`last_params`
                of an earlier call) to replay. (Default: drawn anew)
            generator: Optional ``torch.Generator`` on ``x``'s device.
            target: Optional ``(B,)`` class indices or ``(B, K)`` soft targets.
            lengths: Optional valid samples per example ``(B,)``.

        Returns:
            ``(V * B, ...)`` view-major, or ``(y, target)`` when ``target`` is given.
        """
        if not self.training:
            y, t = self._call(x, params, generator, target, lengths)
            return y if target is None else (y, t)
        if self.include_original:  # first: the views' call then sets last_params
            y0, t0 = self._original(x, generator, target, lengths)
        n = self.n_views
        y, t = self._call(_tile(x, n), params, generator,
                          None if target is None else _tile(target, n),
                          None if lengths is None else _tile(lengths, n))
        if self.include_original:
            y = torch.cat([y0, y])
            if target is not None:
                t = torch.cat([t0.to(t.dtype), t])
        return y if target is None else (y, t)

    def extra_repr(self) -> str:
        return f"n_views={self.n_views}, include_original={self.include_original}"
