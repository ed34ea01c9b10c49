"""The contract every random transform follows.

- ``p`` is the chance that an example is transformed; ``same_on_batch=False``
  draws independent parameters per example.
- ``generate_params(shape, device, generator)`` draws every random number on
  ``device`` (optionally from a ``torch.Generator``) and returns
  ``dict[str, Tensor]``, each with a leading batch dim; ``apply(x, params)`` is
  pure given them.
- ``forward(x, params=None, generator=None)`` draws (or replays) parameters,
  keeps them on ``self.last_params`` for logging, and applies them.
- In ``eval()`` mode the input is returned unchanged.
- No per-example Python loops, ``.item()`` or boolean-mask indexing in forward.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor, nn

from .. import functional as F

Params = dict[str, Tensor]


def check_probability(name: str, value: float) -> float:
    if not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def check_range(name: str, value, low: float = -float("inf"), allow_scalar: bool = True
                ) -> tuple[float, float]:
    """Accept ``v`` (meaning ``(v, v)``) or ``(lo, hi)`` with ``low <= lo <= hi``."""
    if isinstance(value, numbers.Real) and allow_scalar:
        value = (value, value)
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, numbers.Real) for v in value)):
        raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if lo > hi:
        raise ValueError(f"{name} must have low <= high, got {value!r}")
    if lo < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return lo, hi


def check_int(name: str, value, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_ndim(name: str, x: Tensor, ndims: tuple[int, ...], what: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} expects a torch.Tensor, got {type(x).__name__}")
    if x.ndim not in ndims:
        raise ValueError(f"{name} expects {what}, got a tensor of shape {tuple(x.shape)}")


class RandomTransform(nn.Module):
    """Base class for batched random transforms.

    Subclasses implement :meth:`sample` (the transform's own parameters) and
    :meth:`apply`; the base class handles ``p``, ``same_on_batch``, replay and
    eval mode.

    Args:
        p: Chance per example that the transform is applied.
        same_on_batch: Draw one set of parameters and use it for every example.
    """

    #: Input ranks the transform accepts, and how to describe them in errors.
    ndims: tuple[int, ...] = (3, 4)
    expects: str = "a batch (B, C, T) or (B, C, F, T)"

    def __init__(self, p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__()
        self.p = check_probability("p", p)
        self.same_on_batch = bool(same_on_batch)
        self.last_params: Params | None = None

    def sample(self, shape: torch.Size, n: int, device: torch.device,
               generator: torch.Generator | None) -> Params:
        """Draw this transform's parameters for ``n`` examples of ``shape``."""
        return {}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        """Apply ``params`` to ``x``; pure."""
        raise NotImplementedError

    def generate_params(self, shape: torch.Size, device: torch.device | str = "cpu",
                        generator: torch.Generator | None = None) -> Params:
        """Draw parameters for a batch of ``shape`` on ``device``.

        Returns:
            ``dict[str, Tensor]``; every value has leading dim ``shape[0]``.
            ``params["apply"]`` is a ``(B,)`` bool tensor: which examples change.
        """
        device = torch.device(device)
        batch = shape[0]
        n = 1 if self.same_on_batch else batch
        params = {"apply": F.bernoulli((n,), self.p, device, generator)}
        params.update(self.sample(shape, n, device, generator))
        if self.same_on_batch:
            params = {k: v.expand(batch, *v.shape[1:]) for k, v in params.items()}
        return params

    def forward(self, x: Tensor, params: Params | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """Transform a batch.

        Args:
            x: Input batch, see the class's shape notes.
            params: Parameters from an earlier call (``last_params``) to replay.
            generator: Optional generator on ``x``'s device.

        Returns:
            Tensor of the same shape (except for crops), dtype and device.
        """
        if not self.training:
            return x
        check_ndim(type(self).__name__, x, self.ndims, self.expects)
        return self.apply(x, self.resolve_params(x, params, generator))

    def resolve_params(self, x: Tensor, params: Params | None,
                       generator: torch.Generator | None) -> Params:
        """Draw parameters for ``x`` unless ``params`` are given; keep them for logging."""
        if params is None:
            if generator is not None and generator.device.type != x.device.type:
                raise ValueError(
                    f"generator is on {generator.device} but the input is on {x.device}; "
                    "create it with torch.Generator(device=x.device)"
                )
            params = self.generate_params(x.shape, x.device, generator)
        self.last_params = params
        return params

    def extra_repr(self) -> str:
        return f"p={self.p}, same_on_batch={self.same_on_batch}"


def where_applied(params: Params, value: Tensor, identity: float) -> Tensor:
    """``value`` where the example is applied, else ``identity``; shape ``(B,)``."""
    return torch.where(params["apply"], value, torch.full_like(value, identity))
