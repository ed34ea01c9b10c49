"""TrivialAugment / RandAugment for audio: a random subset of transforms per example, batched."""

from __future__ import annotations

import numbers
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from ._base import Params, RandomTransform

# One real sibling dependency: entries are named exactly as Compose names its steps.
from .compose import name_steps


def _domain(t: RandomTransform) -> str | None:
    """``"spectrogram"``, ``"waveform"`` (``(B, C, T)`` only) or ``None`` (either)."""
    if "spectrogram" in t.expects:
        return "spectrogram"
    return "waveform" if 4 not in t.ndims else None


def _named(transforms) -> OrderedDict[str, RandomTransform]:
    """Validate ``transforms`` and name its entries as :class:`Compose` does."""
    if isinstance(transforms, Mapping):
        items = list(transforms.items())
    elif isinstance(transforms, Iterable) and not isinstance(transforms, (str, nn.Module)):
        items = list(transforms)
    else:
        raise TypeError("transforms must be a list of RandomTransforms, (name, module) pairs "
                        f"or a dict name -> module, got {type(transforms).__name__}")
    if not items:
        raise ValueError("transforms must hold at least one RandomTransform, got none")
    return name_steps(items, "transforms: name", _check_entry)


def _check_entry(i: int, module) -> None:
    if not isinstance(module, RandomTransform):
        raise TypeError(f"transforms[{i}] must be an augkit RandomTransform, got "
                        f"{type(module).__name__}")
    if module.uses_target:
        raise ValueError(f"transforms[{i}] ({type(module).__name__}) transforms targets; "
                         "TrivialAugment takes signal transforms only")


def _num_ops(value, k: int) -> tuple[int, int]:
    pair = value if isinstance(value, (tuple, list)) else (value, value)
    if (len(pair) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                  for v in pair) or not 0 <= pair[0] <= pair[1] <= k):
        raise ValueError(f"num_ops must be an integer or an integer range (lo, hi) with "
                         f"0 <= lo <= hi <= len(transforms) = {k}, got {value!r}")
    return int(pair[0]), int(pair[1])


class _Cases:
    """``TrivialAugment.cases``, built when read: the contract-test cases hold other
    transforms, which this module does not import (``tests/test_contract.py`` reads
    ``cls.cases``; each read builds fresh modules)."""

    def __get__(self, obj, owner) -> tuple[dict, ...]:
        from augkit import transforms as T  # the registry, for test data only

        return (
            dict(kwargs=dict(transforms=[T.Gain(gain_db=(3, 12)), T.PolarityInversion(),
                                         T.ColoredNoise(), T.LowPassFilter(sample_rate=16000)]),
                 input="wave", changes="always"),
            dict(kwargs=dict(transforms=[("gain", T.Gain(gain_db=(-12, -3))),
                                         ("noise", T.GaussianNoise()),
                                         ("polarity", T.PolarityInversion())], num_ops=(0, 2)),
                 input="wave"),
            dict(kwargs=dict(transforms=[T.TimeShift(), T.PolarityInversion(), T.Gain()],
                             num_ops=(2, 3)),
                 input="wave", changes="maybe"),
            dict(kwargs=dict(transforms=dict(gain=T.Gain(factor=(0.5, 0.9)),
                                             freq=T.FrequencyMasking(8), time=T.TimeMasking(10)),
                             num_ops=2),
                 input="spec", changes="maybe"),
        )


class TrivialAugment(RandomTransform):
    """TrivialAugment / RandAugment for audio: each example gets ``num_ops`` random transforms.

    For every example, ``num_ops`` *distinct* transforms of ``transforms`` are
    chosen uniformly at random (every subset of that size equally likely), and
    each chosen one draws its magnitude from its own range: TrivialAugment's
    uniform magnitude is each transform's range (``Gain(gain_db=(-12, 12))``
    draws ``U(-12, 12)`` dB). ``num_ops=(lo, hi)`` draws the count per example,
    uniform on ``lo..hi`` (RandAugment-style random subset sizes). The chosen
    transforms are applied in the **fixed order of** ``transforms``, not in a
    random order.

    Batched: each transform runs once over the whole batch with its per-example
    apply mask set to the examples that chose it, so examples it was not chosen
    for come back exactly (its own gate). Its own ``p`` and ``same_on_batch``
    are not used: this step's ``p`` and ``same_on_batch`` decide. A call costs
    about as much as running every transform, whatever ``num_ops``.

    Parameters: ``params["ops"]`` ``(B, K)`` bool, which of the ``K`` transforms
    each example got (in the order of :attr:`names`); ``params["<name>.<key>"]``,
    each transform's drawn parameters. An example not drawn (chance ``1 - p``)
    gets no transform.

    Args:
        transforms: Random transforms of one domain: all waveform ``(B, C, T)``
            steps or all spectrogram ``(B, C, F, T)`` steps (steps that take either,
            like ``Gain``, go with both); no target steps (``Mixup``). A list (named
            after their class in snake case, as in :class:`Compose`), a list of
            ``(name, module)`` pairs or a mapping ``name -> module``.
            ``transforms`` has no default.
        num_ops: Transforms per example, an integer or a range ``(lo, hi)`` with
            ``0 <= lo <= hi <= len(transforms)``. (Default: ``1``, TrivialAugment)
        p: Chance per example that it gets any transform. (Default: ``1.0``)
        same_on_batch: One draw (choice and magnitudes) for the whole batch.
            (Default: ``False``)

    Shape:
        What ``transforms`` take, ``(B, C, T)`` or ``(B, C, F, T)``; unchanged
        unless a transform crops.

    Example:
        >>> aug = TrivialAugment([PolarityInversion(), Gain(gain_db=(6, 6))])
        >>> aug.names
        ['polarity_inversion', 'gain']
        >>> y = aug(torch.ones(4, 1, 3), generator=torch.Generator().manual_seed(4))
        >>> aug.last_params["ops"].sum(1)  # one transform each
        tensor([1, 1, 1, 1])
        >>> y[:, 0, 0]  # -1 (polarity) or 10 ** (6 / 20) (gain)
        tensor([-1.0000,  1.9953, -1.0000,  1.9953])
    """

    # The choice is the gated parameter: an example not drawn chooses no transform,
    # and each transform's own gate returns it exactly.
    identity = {"ops": False}
    uses_lengths = True
    cases = _Cases()

    def __init__(self, transforms: Iterable[RandomTransform]
                 | Iterable[tuple[str, RandomTransform]] | Mapping[str, RandomTransform],
                 num_ops: int | tuple[int, int] = 1, p: float = 1.0,
                 same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        named = _named(transforms)
        domains = {n: _domain(t) for n, t in named.items()}
        wave = [n for n, d in domains.items() if d == "waveform"]
        spec = [n for n, d in domains.items() if d == "spectrogram"]
        if wave and spec:
            raise ValueError(f"transforms mixes waveform steps {wave} and spectrogram steps "
                             f"{spec}; give steps of one domain")
        ndims = set.intersection(*(set(t.ndims) for t in named.values()))
        if not ndims:
            raise ValueError("transforms expect inputs of different ranks: "
                             f"{ {n: t.ndims for n, t in named.items()} }")
        self.transforms = nn.ModuleDict(named)
        self.num_ops = _num_ops(num_ops, len(named))
        # What the steps accept, checked once by the base class's forward.
        self.ndims = tuple(sorted(ndims))
        first = next((named[n] for n in wave + spec), None)
        self.expects = first.expects if first is not None else type(self).expects
        self.min_length = max(t.min_length for t in named.values())
        self.batch_params = tuple(f"{n}.{k}" for n, t in named.items() for k in t.batch_params)
        # A new step is in training mode as a whole: the transforms are run through
        # their own forward, so one left in eval() elsewhere would silently do nothing.
        self.train()

    @property
    def names(self) -> list[str]:
        return list(self.transforms.keys())

    def __getitem__(self, name: str) -> RandomTransform:
        return self.transforms[name]

    def sample(self, shape, n, device, generator) -> Params:
        lo, hi = self.num_ops
        count = (torch.randint(lo, hi + 1, (n,), device=device, generator=generator)
                 if lo < hi else torch.full((n,), lo, device=device))
        # A uniformly random rank of each transform per example; the first `count` are chosen.
        rank = torch.rand((n, len(self.transforms)), device=device,
                          generator=generator).argsort(1).argsort(1)
        params = {"ops": rank < count[:, None]}
        for name, t in self.transforms.items():
            params.update({f"{name}.{k}": v for k, v in
                           t.sample(shape, n, device, generator).items()})
        return params

    def apply(self, x: Tensor, params: Params, lengths: Tensor | None = None) -> Tensor:
        ops = params["ops"]
        for i, (name, t) in enumerate(self.transforms.items()):
            prefix = name + "."
            own = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
            x = t(x, {**own, "apply": ops[:, i]}, lengths=lengths)
        return x

    def extra_repr(self) -> str:
        lo, hi = self.num_ops
        return f"num_ops={lo if lo == hi else (lo, hi)}, " + super().extra_repr()
