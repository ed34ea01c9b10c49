"""A named training chain: waveform steps, frontend, spectrogram steps, target steps."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from .. import functional as F
from ._base import Params, RandomTransform, check_int, check_lengths, check_ndim


def _snake(name: str) -> str:
    """``MelFrontend`` -> ``mel_frontend``, ``AmplitudeToDB`` -> ``amplitude_to_db``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def name_steps(items, label: str, check=None) -> OrderedDict[str, nn.Module]:
    """Name each of ``items`` (modules or ``(name, module)`` pairs) as :class:`Compose` does.

    Unnamed modules get their class name in snake case (``gain``, ``gain_2``, ...).
    ``check(i, module)`` validates each module first; ``label`` starts the messages
    about names (``"Compose step name"``).
    """
    named: OrderedDict[str, nn.Module] = OrderedDict()
    for i, item in enumerate(items):
        name, module = item if isinstance(item, tuple) and len(item) == 2 else (None, item)
        if check is not None:
            check(i, module)
        if name is None:
            base = name = _snake(type(module).__name__)
            k = 2
            while name in named:
                name, k = f"{base}_{k}", k + 1
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"{label} {name!r} must be a non-empty string without '.'")
        if name in named:
            raise ValueError(f"{label} {name!r} is used twice")
        named[name] = module
    return named


def _check_step(i: int, module) -> None:
    if not isinstance(module, nn.Module):
        raise ValueError(f"Compose steps must be nn.Modules, got {type(module).__name__}")


class Compose(nn.Module):
    """Apply steps in order; every step has a name and can be disabled.

    Random steps (:class:`RandomTransform`) take their share of ``params``, the
    ``generator`` and the targets; other modules (:class:`MelFrontend`,
    :class:`AmplitudeToDB`, any ``nn.Module``) are called as ``step(x)``, and
    those with ``takes_lengths = True`` (the normalisers, e.g.
    :class:`Standardize`) as ``step(x, lengths=lengths)``. One chain thus goes
    waveform -> augment -> frontend -> augment -> normalise -> Mixup.

    ``lengths`` (valid samples per example) follow the chain: a step with a
    ``frames(lengths)`` method (:class:`MelFrontend`) turns them into valid
    frames, steps with ``takes_lengths`` or ``keeps_lengths``
    (:class:`AmplitudeToDB`) and random steps keep them, any other module drops
    them (the steps after it get ``None``).

    ``chain(x)`` returns ``x``. ``chain(x, target=y)`` (or ``chain(x, y)``) returns
    ``(x, soft_target)`` with ``soft_target`` float ``(B, K)``, in ``eval()`` too:
    class indices are one-hot encoded first (``num_classes`` from the argument
    or from a step that has one, e.g. ``Mixup(num_classes=10)``; steps that
    disagree with it are an error at construction), then steps with
    ``uses_target`` (Mixup) transform them. Targets and ``lengths`` are checked
    once, here: shapes always, values on the CPU or with ``check=True`` (see
    :meth:`RandomTransform.forward`).

    Args:
        steps: Modules as a list (named after their class in snake case, with a
            numeric suffix on repeats), a list of ``(name, module)`` pairs, or a
            mapping ``name -> module``.
        disabled: Names of steps to skip. (Default: none)
        num_classes: Classes for one-hot targets; steps that have a
            ``num_classes`` must agree with it. (Default: from the steps)

    Example:
        >>> aug = Compose([Gain(), MelFrontend(16000), TimeMasking(20), Mixup(num_classes=3)])
        >>> aug.names
        ['gain', 'mel_frontend', 'time_masking', 'mixup']
        >>> x, y = aug(torch.randn(4, 1, 16000), target=torch.tensor([0, 1, 2, 0]))
        >>> tuple(x.shape), tuple(y.shape)
        ((4, 1, 128, 81), (4, 3))
        >>> aug.disable("gain").names  # still listed; skipped from now on
        ['gain', 'mel_frontend', 'time_masking', 'mixup']
    """

    def __init__(self, steps: Iterable[nn.Module] | Iterable[tuple[str, nn.Module]]
                 | Mapping[str, nn.Module], disabled: Iterable[str] = (),
                 num_classes: int | None = None) -> None:
        super().__init__()
        items = list(steps.items()) if isinstance(steps, Mapping) else list(steps)
        named = name_steps(items, "Compose step name", _check_step)
        self.steps = nn.ModuleDict(named)
        self.disabled: frozenset[str] = frozenset()
        self.disable(*disabled)
        found = {name: m.num_classes for name, m in named.items()
                 if getattr(m, "num_classes", None) is not None}
        if num_classes is not None:
            num_classes = check_int("num_classes", num_classes, 1)
            for name, k in found.items():
                if k != num_classes:
                    raise ValueError(f"Compose(num_classes={num_classes}) but step {name!r} "
                                     f"({type(named[name]).__name__}) has num_classes={k}; "
                                     "give them the same value")
        elif len(set(found.values())) > 1:
            raise ValueError(f"Compose steps disagree on num_classes: {found}; give them "
                             "the same value")
        elif found:
            num_classes = next(iter(found.values()))
        self.num_classes = num_classes
        self.last_params: dict[str, Params] = {}

    @property
    def names(self) -> list[str]:
        return list(self.steps.keys())

    def _check(self, names: Iterable[str]) -> set[str]:
        names = set(names)
        unknown = names - set(self.steps.keys())
        if unknown:
            raise ValueError(f"unknown Compose step(s) {sorted(unknown)}; steps are {self.names}")
        return names

    def disable(self, *names: str) -> Compose:
        """Skip the named steps from now on; returns ``self``."""
        self.disabled = frozenset(self.disabled | self._check(names))
        return self

    def enable(self, *names: str) -> Compose:
        """Run the named steps again; returns ``self``."""
        self.disabled = frozenset(self.disabled - self._check(names))
        return self

    def __getitem__(self, name: str) -> nn.Module:
        return self.steps[name]

    def forward(self, x: Tensor, params: Mapping[str, Params] | None = None,
                generator: torch.Generator | None = None, *, target: Tensor | None = None,
                lengths: Tensor | None = None, check: bool | None = None):
        """Run the enabled steps.

        Args:
            x: Input batch for the first step.
            params: ``{step name: params}`` from an earlier call's ``last_params``,
                replayed for those steps (on a batch of the same size); other
                random steps draw anew. A name that is not a step is an error. A
                tensor here is taken as ``target`` (``chain(x, labels)``).
            generator: Optional generator shared by the random steps.
            target: Optional ``(B,)`` integer class indices or ``(B, K)`` soft targets.
            lengths: Optional valid samples per example ``(B,)`` of the input, an
                integer tensor on ``x``'s device, passed to the random steps and to
                modules with ``takes_lengths``; a step with a ``frames(lengths)``
                method (the frontend) converts them to valid frames, a module with
                neither (nor ``keeps_lengths``) drops them.
            check: Check the values of ``target`` and ``lengths``: ``None`` on the
                CPU only (on CUDA it is a host sync), ``True`` always, ``False``
                never; see :meth:`RandomTransform.forward`.

        Returns:
            The last step's output, or ``(output, soft targets (B, K) float)`` when
            ``target`` is given.
        """
        params, target = self._check_call(x, params, target, lengths, check)
        used: dict[str, Params] = {}
        for name, step in self.steps.items():
            if name in self.disabled:
                continue
            if isinstance(step, RandomTransform):
                p = None if params is None else params.get(name)
                # Targets and lengths were checked above: the steps skip the value checks.
                if target is None:
                    x = step(x, p, generator, lengths=lengths, check=False)
                else:
                    x, target = step(x, p, generator, target=target, lengths=lengths,
                                     check=False)
                if step.training:
                    used[name] = step.last_params
            elif getattr(step, "takes_lengths", False):
                x = step(x, lengths=lengths)
            else:
                x = step(x)
                if lengths is not None and callable(getattr(step, "frames", None)):
                    lengths = step.frames(lengths)
                elif not getattr(step, "keeps_lengths", False):
                    lengths = None
        self.last_params = used
        return x if target is None else (x, target)

    def _check_call(self, x, params, target, lengths, check: bool | None):
        """``(params, target)`` checked; a tensor as ``params`` is the targets."""
        if isinstance(params, Tensor):  # chain(x, labels), torchvision-style
            if target is not None:
                raise TypeError("Compose: got targets twice (a tensor as params and target=); "
                                "params must be a dict from last_params")
            params, target = None, params
        if params is not None:
            if not isinstance(params, Mapping):
                raise TypeError(f"Compose: params must be a dict step name -> params (an "
                                f"earlier call's last_params), got {type(params).__name__}")
            unknown = sorted(set(params) - set(self.steps.keys()))
            if unknown:
                raise ValueError(f"Compose: params name unknown step(s) {unknown}; steps are "
                                 f"{self.names}")
        if target is not None or lengths is not None:
            check_ndim("Compose", x, tuple(range(1, 8)), "a batch (B, ...)")
        if target is not None:
            target = F.soft_targets(target, self.num_classes, batch=x.shape[0], check=check,
                                    owner="Compose")
        if lengths is not None:
            check_lengths("Compose", x, lengths, check)
        return params, target

    def extra_repr(self) -> str:
        return f"disabled={sorted(self.disabled)}" if self.disabled else ""
