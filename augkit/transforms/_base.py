"""The contract every random transform follows, owned by :class:`RandomTransform`.

A subclass writes two methods and declares a few class attributes:

- :meth:`RandomTransform.sample` (**the one extension hook**) draws the
  transform's own parameters for ``n`` examples on ``device`` from an optional
  ``torch.Generator`` and returns ``dict[str, Tensor]`` with leading dim ``n``;
- :meth:`RandomTransform.apply` applies given parameters to a batch; pure.

The base class owns everything else:

- **the probability gate**: ``params["apply"]`` ``(B,)`` bool, ``True`` with
  chance ``p`` per example. A transform whose parameters have an *identity value*
  that leaves the input bit-identical (gain 0 dB, mask width 0, shift 0) lists
  them in :attr:`~RandomTransform.identity`, and the base replaces the value of
  every example not drawn by ``torch.where(apply, value, identity)`` before
  :meth:`apply`. A transform whose identity is only approximate (FFT filters,
  resampling, STFT-based effects) sets ``gate = "output"``, and the base returns
  ``torch.where(apply, y, x)``. Either way an example not drawn, ``p=0`` and
  ``eval()`` give back the input exactly.
- **same_on_batch**: one draw (``n=1``) expanded to the batch, drawn noise
  included; parameters listed in :attr:`~RandomTransform.batch_params` (drawn for
  the batch as a whole, like Mixup's partner permutation) are left as drawn.
- **replay**: ``forward(x, params=last_params)`` repeats a call exactly;
  ``last_params`` keeps what was used, ungated, for logging.
- **targets**: ``forward(x, ..., target=y)`` returns ``(x, y)``. Steps with
  ``uses_target = True`` (Mixup) transform ``y`` as soft targets ``(B, K)``; the
  others pass it through.
- **multi-channel input**: one parameter set per example, shared by its channels.
- **input checks**: the rank, against :attr:`~RandomTransform.ndims`.

No per-example Python loops, ``.item()`` or boolean-mask indexing anywhere in
``forward``: a chain runs under ``torch.cuda.set_sync_debug_mode("error")``.
"""

from __future__ import annotations

import math
import numbers
from typing import ClassVar

import torch
from torch import Tensor, nn

from .. import functional as F

Params = dict[str, Tensor]


def check_number(name: str, value, low: float = -math.inf, high: float = math.inf,
                 low_open: bool = False) -> float:
    """A finite real number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(float(value))):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    v = float(value)
    if v < low or v > high or (low_open and v == low):
        lo = "(" if low_open else "["
        raise ValueError(f"{name} must be in {lo}{low}, {high}], got {value!r}")
    return v


def check_probability(name: str, value: float) -> float:
    if not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def check_range(name: str, value, low: float = -float("inf"), allow_scalar: bool = True
                ) -> tuple[float, float]:
    """Accept ``v`` (meaning ``(v, v)``) or ``(lo, hi)`` with ``low <= lo <= hi``."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and allow_scalar:
        value = (value, value)
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)):
        raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} must be finite, got {value!r}")
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
    """Base class for batched random transforms (see the module docstring).

    Args:
        p: Chance per example that the transform is applied.
        same_on_batch: Draw one set of parameters and use it for every example.
    """

    #: Input ranks the transform accepts, and how to describe them in errors.
    ndims: ClassVar[tuple[int, ...]] = (3, 4)
    expects: ClassVar[str] = "a batch (B, C, T) or (B, C, F, T)"
    #: ``"params"``: examples not drawn get the :attr:`identity` parameter values;
    #: ``"output"``: examples not drawn get the input back (``torch.where(apply, y, x)``).
    gate: ClassVar[str] = "params"
    #: Parameter name -> the value that leaves an example bit-identical.
    identity: ClassVar[dict[str, float]] = {}
    #: Parameters drawn for the batch as a whole; ``same_on_batch`` leaves them as drawn.
    batch_params: ClassVar[tuple[str, ...]] = ()
    #: Whether the step transforms targets too (then it sees soft targets ``(B, K)``).
    uses_target: ClassVar[bool] = False
    #: Whether ``apply`` takes ``lengths`` ``(B,)``: valid samples per example, for
    #: transforms whose effect depends on level (padding must not count as signal).
    uses_lengths: ClassVar[bool] = False
    #: Shortest last axis (samples or frames) the transform is documented to handle.
    min_length: ClassVar[int] = 1
    #: Contract-test cases, data beside the transform (``tests/test_contract.py``):
    #: each is ``dict(kwargs=..., input="wave"|"spec")`` plus optional expectations:
    #: ``changes`` with p=1: ``"always"`` (every example), ``"unless_identity"`` (the
    #: default: exactly the examples whose parameters are not all at identity), or
    #: ``"maybe"``; ``shape``: the output's last dims when they differ from the input's;
    #: ``partner_only``: the change comes only from other examples of the batch (CutMix
    #: pastes a partner's region), so a batch of identical inputs comes back unchanged.
    cases: ClassVar[tuple[dict, ...]] = ()

    def __init__(self, p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__()
        self.p = check_probability("p", p)
        self.same_on_batch = bool(same_on_batch)
        self.last_params: Params | None = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.gate not in ("params", "output"):
            raise TypeError(f"{cls.__name__}.gate must be 'params' or 'output'")
        if cls.gate == "params" and not cls.identity and cls.apply is not RandomTransform.apply:
            raise TypeError(f"{cls.__name__} gates its parameters but declares no identity "
                            "values; set identity = {name: value} or gate = 'output'")

    # --- what a subclass writes ---------------------------------------------------------

    def sample(self, shape: torch.Size, n: int, device: torch.device,
               generator: torch.Generator | None) -> Params:
        """Draw this transform's parameters: the one extension hook.

        Args:
            shape: Shape of the whole input batch, ``(B, ...)``.
            n: How many examples to draw for: ``B``, or 1 with ``same_on_batch``.
            device: Where to draw (the input's device).
            generator: Optional ``torch.Generator`` on ``device``; pass it to every
                ``torch.rand``/``randn``/``randperm``.

        Returns:
            ``dict[str, Tensor]``, each value with leading dim ``n`` (those named
            in :attr:`batch_params`: leading dim ``B``).
        """
        return {}

    def apply(self, x: Tensor, params: Params, target: Tensor | None = None,
              lengths: Tensor | None = None):
        """Apply (already gated) ``params`` to ``x``; pure.

        Returns ``x`` transformed; a step with ``uses_target`` returns
        ``(x, target)`` with ``target`` soft ``(B, K)`` or ``None``. Only steps
        with ``uses_target`` get ``target``, only those with ``uses_lengths`` get
        ``lengths`` (both as keyword arguments).
        """
        raise NotImplementedError

    # --- what the base class does ---------------------------------------------------------

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
            params = {k: v if k in self.batch_params else v.expand(batch, *v.shape[1:])
                      for k, v in params.items()}
        return params

    def gated(self, params: Params) -> Params:
        """``params`` with every example not drawn set to the :attr:`identity` values."""
        apply = params["apply"]
        out = dict(params)
        for name, value in self.identity.items():
            if name in out:
                v = out[name]
                out[name] = torch.where(F.per_example(apply, v), v,
                                        torch.full((), value, dtype=v.dtype, device=v.device))
        return out

    def forward(self, x: Tensor, params: Params | None = None,
                generator: torch.Generator | None = None, *, target: Tensor | None = None,
                lengths: Tensor | None = None):
        """Transform a batch.

        Args:
            x: Input batch, floating point, see the class's shape notes.
            params: Parameters from an earlier call (``last_params``) to replay.
            generator: Optional ``torch.Generator`` on ``x``'s device.
            target: Optional targets ``(B,)`` or ``(B, K)``; then ``(x, target)`` is
                returned. Steps with ``uses_target`` return soft targets ``(B, K)``.
            lengths: Optional valid samples per example ``(B,)`` int64 (the rest is
                padding); used by level-dependent steps (``uses_lengths``).

        Returns:
            ``x`` transformed (same shape, dtype and device, except for crops), or
            ``(x, target)`` when ``target`` is given.
        """
        if self.uses_target and target is not None:
            target = F.soft_targets(target, getattr(self, "num_classes", None))
        if not self.training:
            return x if target is None else (x, target)
        check_ndim(type(self).__name__, x, self.ndims, self.expects)
        if not x.is_floating_point():
            raise TypeError(f"{type(self).__name__} expects a floating-point tensor, got "
                            f"{x.dtype}; convert first, e.g. x.float() / 32768 for int16 audio")
        params = self.resolve_params(x, params, generator)
        kwargs = {}
        if self.uses_target:
            kwargs["target"] = target
        if self.uses_lengths:
            kwargs["lengths"] = lengths
        y = self.apply(x, self.gated(params) if self.gate == "params" else params, **kwargs)
        if self.uses_target:
            y, target = y
        if self.gate == "output":
            y = torch.where(F.per_example(params["apply"], y), y, x)
        return y if target is None else (y, target)

    def resolve_params(self, x: Tensor, params: Params | None,
                       generator: torch.Generator | None) -> Params:
        """Draw parameters for ``x`` unless ``params`` are given; keep them for logging."""
        if params is None:
            if generator is not None and not isinstance(generator, torch.Generator):
                raise TypeError(f"generator must be a torch.Generator, got "
                                f"{type(generator).__name__}; e.g. "
                                "torch.Generator(device=x.device).manual_seed(0)")
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
