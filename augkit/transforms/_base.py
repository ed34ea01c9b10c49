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
  Replayed params must hold the same keys and be drawn for the same batch size
  (their leading dim is checked against ``x``'s: a shape check, no sync).
- **targets**: ``forward(x, ..., target=y)`` (or ``forward(x, y)``, as with
  torchvision's ``MixUp``) returns ``(x, y)``. Steps with ``uses_target = True``
  (Mixup) transform ``y`` as soft targets ``(B, K)``; the others pass it through.
- **multi-channel input**: one parameter set per example, shared by its channels.
- **empty batches**: ``B = 0`` gives an empty batch of the output's shape and dtype.
- **input checks**: the rank, against :attr:`~RandomTransform.ndims` (and a
  warning for a channel axis longer than a time axis of at most 8, which looks
  like ``(B, T, C)`` audio); the shapes, dtypes and devices of ``target``,
  ``lengths`` and replayed ``params``. Their *values* (class indices in
  ``[0, num_classes)``, ``lengths >= 0``) are checked when they are on the CPU;
  on CUDA reading them is a host sync, so only with ``check=True`` (see
  :func:`check_lengths` and :func:`augkit.functional.soft_targets`);
  ``check=False`` skips them everywhere.
- **gradients**: outputs are differentiable in ``x`` (the quantisers' gradient
  is zero almost everywhere); replayed params make a call a fixed function of ``x``.

No per-example Python loops, ``.item()`` or boolean-mask indexing anywhere in
``forward``: a chain runs under ``torch.cuda.set_sync_debug_mode("error")``. One
exception, on the CPU only: there reading the draws costs nothing, so a
transform computes its drawn examples alone (``p = 0.5``: half the work) and
copies the others (:data:`COMPUTE_DRAWN_ONLY`, on by default; the
result is the same).
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import os
import warnings
from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from .. import functional as F
from ..functional.augment import check_target_batch, reads_values

Params = dict[str, Tensor]

#: How many forwards up the stack are inside their ``apply`` with ``lengths``: those
#: checked them (or were told not to), so a transform run inside another's ``apply``
#: (TrivialAugment's) does not read their values again unless given ``check=True``.
_NESTED = [0]

#: On the CPU, compute a transform for its drawn examples only (the same
#: result, less work; see :meth:`RandomTransform._drawn_on_cpu`). ``False`` computes whole
#: batches and selects, as on a GPU (the sync-free path the tests check on the CPU).
COMPUTE_DRAWN_ONLY = True

#: A batch whose last (time) axis has at most this many entries and whose channel
#: axis more gets a warning: it looks like ``(B, T, C)`` audio (soundfile's layout).
LAYOUT_HINT_LAST = 8


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


def check_lengths(name: str, x: Tensor, lengths, check: bool | None = None) -> Tensor:
    """Validate ``lengths`` (valid samples or frames per example) for the batch ``x``.

    Shapes, dtype and device are always checked (no host sync). The values
    (``>= 0``) are checked when ``check`` is ``True``, or when it is ``None`` and
    ``lengths`` is on the CPU: on CUDA reading them is a host sync, which the
    no-sync contract forbids unless asked for (and under ``torch.compile`` a
    graph break). A length above ``T`` counts as ``T`` (a chain keeps the clips'
    lengths after a crop).

    Args:
        name: Who is checking, for the messages (the transform's class name).
        x: The batch ``(B, ...)``.
        lengths: Must be an integer tensor ``(B,)`` on ``x``'s device.
        check: Check the values: ``True`` always, ``False`` never, ``None`` on CPU.

    Returns:
        ``lengths``, unchanged.
    """
    if not isinstance(lengths, Tensor):
        raise TypeError(f"{name}: lengths must be a (B,) integer tensor, got "
                        f"{type(lengths).__name__}; e.g. torch.tensor([...], device=x.device)")
    if lengths.ndim != 1 or lengths.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: lengths must have shape (B,) = ({x.shape[0]},), one per "
                         f"example, got {tuple(lengths.shape)}")
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"{name}: lengths must be an integer tensor (valid samples per "
                        f"example), got {lengths.dtype}; e.g. lengths.long()")
    if lengths.device != x.device:
        raise ValueError(f"{name}: lengths are on {lengths.device} but the input is on "
                         f"{x.device}; move them with lengths.to(x.device)")
    if reads_values(check, lengths) and lengths.numel():
        bad = lengths < 0
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(f"{name}: lengths must be >= 0, got {int(lengths[i])} for "
                             f"example {i}")
    return lengths


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
    #: On the CPU, compute the drawn examples only (see :meth:`_drawn_on_cpu`); ``False``
    #: for a transform whose examples depend on each other or that changes the shape.
    compute_drawn_only: ClassVar[bool] = True
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
        #: The keys this transform's draws hold (learnt from its first draw), for
        #: checking replayed params.
        self._param_keys: frozenset[str] | None = None

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
            ``dict[str, Tensor]``, each value with leading dim ``n`` (leading dim
            ``B`` for those named in :attr:`batch_params`).
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
        self._param_keys = frozenset(params)
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
                lengths: Tensor | None = None, check: bool | None = None):
        """Transform a batch.

        Args:
            x: Input batch, floating point, see the class's shape notes. An empty
                batch (``B = 0``) gives an empty output of the right shape.
            params: Parameters from an earlier call (``last_params``) to replay, on a
                batch of the same size. A tensor here is taken as ``target``
                (``Mixup(num_classes=10)(x, labels)``, as torchvision's ``MixUp``).
            generator: Optional ``torch.Generator`` on ``x``'s device.
            target: Optional targets: ``(B,)`` integer class indices or ``(B, K)``
                soft targets; then ``(x, target)`` is returned. Steps with
                ``uses_target`` return soft targets ``(B, K)`` float32 (class indices
                need ``num_classes``, and ``K`` must equal it).
            lengths: Optional valid samples per example ``(B,)``, an integer tensor on
                ``x``'s device (the rest is padding; values above ``T`` count as
                ``T``); used by level-dependent steps (``uses_lengths``).
            check: Check the *values* of ``target`` (class indices in
                ``[0, num_classes)``) and ``lengths`` (``>= 0``): ``None`` (default)
                does so for CPU tensors only, since on CUDA it is a host sync;
                ``True`` on every device; ``False`` never. Shapes are always checked.

        Returns:
            ``x`` transformed (same shape, dtype and device, except for crops), or
            ``(x, target)`` when ``target`` is given.
        """
        name = type(self).__name__
        params, target = self._targets(x, params, target, check)
        if not self.training:
            return x if target is None else (x, target)
        check_ndim(name, x, self.ndims, self.expects)
        if not x.is_floating_point():
            raise TypeError(f"{name} expects a floating-point tensor, got "
                            f"{x.dtype}; convert first, e.g. x.float() / 32768 for int16 audio")
        if x.shape[-1] <= LAYOUT_HINT_LAST < x.shape[1]:
            warnings.warn(f"{name} got shape {tuple(x.shape)}: {x.shape[1]} channels of "
                          f"{x.shape[-1]} samples or frames (time is the last axis); for "
                          "(B, T, C) audio, as soundfile reads it, pass x.transpose(1, -1)",
                          stacklevel=2)
        if lengths is not None:
            if check is None and _NESTED[0]:
                check = False  # the outer transform checked them as it was told
            check_lengths(name, x, lengths, check)
        if x.shape[0] == 0:
            self._check_generator(x, generator)
            y = self._empty_batch(x)
            return y if target is None else (y, target)
        params = self.resolve_params(x, params, generator)
        gated = self.gated(params) if self.gate == "params" else params
        drawn = self._drawn_on_cpu(x, params)
        source = x
        if drawn is not None:  # the CPU: the drawn examples alone, the others copied
            if drawn.numel() == 0:
                return x.clone() if target is None else (x.clone(), target)
            source = x.index_select(0, drawn)
            gated = {k: v.index_select(0, drawn) for k, v in gated.items()}
            lengths = None if lengths is None else lengths.index_select(0, drawn)
        kwargs = {}
        if self.uses_target:
            kwargs["target"] = target
        if self.uses_lengths:
            kwargs["lengths"] = lengths
        if lengths is None:
            y = self.apply(source, gated, **kwargs)
        else:
            _NESTED[0] += 1
            try:
                y = self.apply(source, gated, **kwargs)
            finally:
                _NESTED[0] -= 1
        if self.uses_target:
            y, target = y
        if drawn is not None:
            dtype = torch.promote_types(y.dtype, x.dtype)
            y = x.to(dtype).index_copy(0, drawn, y.to(dtype))
        elif self.gate == "output":
            y = torch.where(F.per_example(params["apply"], y), y, x)
        return y if target is None else (y, target)

    def _drawn_on_cpu(self, x: Tensor, params: Params) -> Tensor | None:
        """The indices ``(n,)`` of the drawn examples, when only they should be computed.

        On the CPU, reading ``params["apply"]`` costs nothing (there is no device to
        wait for), so a transform computes the drawn examples alone instead of the
        whole batch (then the output gate, or identity parameters for the others): at
        ``p = 0.5`` half the work. The examples not drawn are the input either way.
        ``None`` (compute the whole batch, then select, as on a GPU) when the input is
        not on the CPU, under ``torch.compile``, when :data:`COMPUTE_DRAWN_ONLY` is off,
        for transforms that see the batch as a whole (:attr:`batch_params`, targets) or
        opt out (:attr:`compute_drawn_only`), and when every example is drawn. The
        result is the same as the whole batch's as long as every example's output
        depends on its own input and parameters only (the registry-wide property test
        checks it).
        """
        if (not self.compute_drawn_only or not COMPUTE_DRAWN_ONLY or x.device.type != "cpu"
                or self.uses_target or self.batch_params or torch.compiler.is_compiling()):
            return None
        drawn = params["apply"].nonzero().squeeze(1)
        return None if drawn.numel() == x.shape[0] else drawn

    def _targets(self, x, params, target, check: bool | None):
        """``(params, target)``: a tensor as ``params`` is the targets; targets checked."""
        name = type(self).__name__
        if isinstance(params, Tensor):  # forward(x, labels), torchvision-style
            if target is not None:
                raise TypeError(f"{name}: got targets twice (a tensor as params and "
                                "target=); params must be a dict from last_params")
            params, target = None, params
        if target is not None:
            batch = x.shape[0] if isinstance(x, Tensor) and x.ndim else None
            if self.uses_target:
                target = F.soft_targets(target, getattr(self, "num_classes", None),
                                        batch=batch, check=check, owner=name)
            else:
                check_target_batch(target, batch, owner=name)
        return params, target

    def _empty_batch(self, x: Tensor) -> Tensor:
        """The output for an empty batch: one example of zeros through the transform, sliced.

        Generic for every transform, crops and other shape changes included; the
        draw uses a private generator (the caller's and the global one are not
        advanced), and ``last_params`` gets empty parameters.
        """
        one = torch.zeros((1, *x.shape[1:]), dtype=x.dtype, device=x.device)
        with torch.no_grad():
            params = self.generate_params(one.shape, one.device,
                                          torch.Generator(device=x.device).manual_seed(0))
            kwargs = {"target": None} if self.uses_target else {}
            y = self.apply(one, self.gated(params) if self.gate == "params" else params,
                           **kwargs)
        if self.uses_target:
            y = y[0]
        self.last_params = {k: v[:0] for k, v in params.items()}
        y = y[:0]
        if torch.is_grad_enabled() and x.requires_grad:  # keep the graph: d(empty)/dx
            y = y + x.sum().to(y.dtype)
        return y

    @staticmethod
    def _check_generator(x: Tensor, generator) -> None:
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got "
                            f"{type(generator).__name__}; e.g. "
                            "torch.Generator(device=x.device).manual_seed(0)")
        if generator is not None and generator.device.type != x.device.type:
            raise ValueError(
                f"generator is on {generator.device} but the input is on {x.device}; "
                "create it with torch.Generator(device=x.device)"
            )

    def check_params(self, x: Tensor, params) -> Params:
        """Validate replayed ``params`` for ``x``: keys, batch size and device (no sync).

        Every value must be a tensor with leading dim ``B`` (``x.shape[0]``) on
        ``x``'s device, and the keys must be those this transform draws.
        """
        name = type(self).__name__
        if not isinstance(params, Mapping):
            raise TypeError(f"{name}: params must be a dict of tensors (an earlier call's "
                            f"last_params), got {type(params).__name__}")
        batch = x.shape[0]
        for k, v in params.items():
            if not isinstance(v, Tensor) or v.ndim == 0:
                what = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
                raise ValueError(f"{name}: params[{k!r}] must be a tensor with a leading "
                                 f"batch dim, got {what}")
            if v.shape[0] != batch:
                raise ValueError(f"{name}: params were drawn for a batch of {v.shape[0]} "
                                 f"(params[{k!r}]) but the input has {batch} examples; "
                                 "replay them on a batch of that size, or draw new ones")
            if v.device != x.device:
                raise ValueError(f"{name}: params[{k!r}] is on {v.device} but the input is "
                                 f"on {x.device}")
        if self._param_keys is None:  # learn the keys from a draw for one example
            self.generate_params((1, *x.shape[1:]), x.device,
                                 torch.Generator(device=x.device).manual_seed(0))
        missing = sorted(self._param_keys - set(params))
        unknown = sorted(set(params) - self._param_keys)
        if missing or unknown:
            raise ValueError(f"{name}: params do not match this transform's: missing "
                             f"{missing}, unknown {unknown}; replay this transform's own "
                             "last_params")
        return params

    def resolve_params(self, x: Tensor, params: Params | None,
                       generator: torch.Generator | None) -> Params:
        """Draw parameters for ``x`` unless ``params`` are given; keep them for logging."""
        if params is None:
            self._check_generator(x, generator)
            params = self.generate_params(x.shape, x.device, generator)
        else:
            params = self.check_params(x, params)
        self.last_params = params
        return params

    def extra_repr(self) -> str:
        return f"p={self.p}, same_on_batch={self.same_on_batch}"


# --- constructor arguments, kept for Compose.to_config / Compose.from_config ---------------

#: The attribute (in the instance's ``__dict__``) where a module built by a public augkit
#: class keeps its constructor arguments. Not a parameter, buffer or submodule: it is in
#: neither ``state_dict`` nor ``repr``; ``copy.deepcopy``, ``pickle`` and ``torch.save``
#: copy it with the rest of ``__dict__``, and ``.to(device)`` leaves it as it is.
ARGS_ATTR = "_augkit_args"

#: The public module classes by name (``augkit.transforms`` registers its ``__all__``):
#: the only classes ``Compose.from_config`` builds.
CONFIG_CLASSES: dict[str, type[nn.Module]] = {}


class Unsaved:
    """Stands in a module's recorded arguments for a value JSON cannot hold.

    A tensor bank (``BackgroundNoise(noises=tensor)``), a generator or any other
    object is not kept (the module holds what it needs; the record would only
    keep it alive and double it in a pickle): only its type name, for the error
    that ``Compose.to_config`` raises.
    """

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<unsaved {self.what}>"


def recorded_value(value):
    """``value`` as a record keeps it: JSON's scalars, lists, tuples, ``str``-keyed dicts,
    and modules by reference (they are the module's own submodules); anything else as
    :class:`Unsaved`. Paths become strings. Iterators are not consumed."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, nn.Module):
        return value
    if isinstance(value, os.PathLike) and isinstance(os.fspath(value), str):
        return os.fspath(value)
    if isinstance(value, (tuple, list)):
        items = [recorded_value(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: recorded_value(v) for k, v in value.items()}
    return Unsaved(type(value).__name__)


def _bind(sig: inspect.Signature, args: tuple, kwargs: dict) -> dict | None:
    """The arguments given (not the defaults) by keyword name; ``None`` if they do not
    bind (the constructor itself then says what is wrong)."""
    try:
        bound = sig.bind(None, *args, **kwargs)  # None stands for self
    except TypeError:
        return None
    record = {}
    for i, (name, value) in enumerate(bound.arguments.items()):
        kind = sig.parameters[name].kind
        if i == 0 and kind is not inspect.Parameter.VAR_POSITIONAL:
            continue  # self
        if kind is inspect.Parameter.VAR_KEYWORD:
            record.update({k: recorded_value(v) for k, v in value.items()})
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:  # no keyword name to give them back by
                record[f"*{name}"] = Unsaved("positional *args")
        else:
            record[name] = recorded_value(value)
    return record


@functools.lru_cache(maxsize=256)
def _signature(init) -> inspect.Signature:
    return inspect.signature(init)


def _recording_new(owner: type[nn.Module]):
    """A ``__new__`` for ``owner`` that keeps the constructor arguments in the new object.

    ``cls(*args, **kwargs)`` passes the arguments to ``__new__`` before ``__init__``:
    recording them there leaves ``__init__`` as it is (no frame added, so warnings'
    ``stacklevel`` and tracebacks are unchanged), and runs once per object, whatever
    ``super().__init__`` calls follow. ``pickle`` and ``copy`` call ``cls.__new__(cls)``
    alone, then restore ``__dict__``, record included.
    """
    def __new__(cls, *args, **kwargs):
        self = super(owner, cls).__new__(cls)
        self.__dict__[ARGS_ATTR] = _bind(_signature(cls.__init__), args, kwargs)
        return self

    # inspect.signature(cls) reads the first own __new__ or __init__ up the MRO: this one
    # must answer with the constructor's signature (e.g. for PolarityInversion).
    __new__.__signature__ = inspect.signature(owner.__init__)
    __new__.__qualname__ = f"{owner.__qualname__}.__new__"
    __new__._records_arguments = True
    return staticmethod(__new__)


def record_arguments(*classes: type[nn.Module]) -> None:
    """Make every module built by ``classes`` keep its constructor arguments, and let
    ``Compose.from_config`` build ``classes`` by name.

    A ``__new__`` is added where no base class has one already; ``__init__``, the
    signature, the docstring and the behaviour are unchanged. Calling it twice for a
    class changes nothing.
    """
    for cls in sorted(classes, key=lambda c: len(c.__mro__)):  # a base before its subclasses
        CONFIG_CLASSES[cls.__name__] = cls
        if getattr(cls.__new__, "_records_arguments", False):
            continue
        if "__new__" in vars(cls):
            raise TypeError(f"{cls.__name__} defines __new__, so its constructor arguments "
                            "cannot be recorded there; record them in that __new__")
        cls.__new__ = _recording_new(cls)
