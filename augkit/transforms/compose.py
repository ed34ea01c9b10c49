"""A named chain of transforms whose steps can be switched off by name."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from ._base import Params, RandomTransform


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Compose(nn.Module):
    """Apply transforms in order; every step has a name and can be disabled.

    Random steps (:class:`RandomTransform`) take their share of ``params`` and
    the ``generator``; other modules (e.g. :class:`MelFrontend`) are called
    plainly, so one chain can go waveform -> augment -> frontend -> augment.

    Args:
        steps: Modules as a list (named after their class in snake case, with a
            numeric suffix on repeats), a list of ``(name, module)`` pairs, or a
            mapping ``name -> module``.
        disabled: Names of steps to skip. (Default: none)

    Example:
        >>> aug = Compose([Gain(gain_db=(-6, 6)), MelFrontend(16000), TimeMasking(20)])
        >>> list(aug.names)
        ['gain', 'mel_frontend', 'time_masking']
        >>> aug.disable("gain")  # now only frontend and masking run
    """

    def __init__(self, steps: Iterable[nn.Module] | Iterable[tuple[str, nn.Module]]
                 | Mapping[str, nn.Module], disabled: Iterable[str] = ()) -> None:
        super().__init__()
        items = list(steps.items()) if isinstance(steps, Mapping) else list(steps)
        named: OrderedDict[str, nn.Module] = OrderedDict()
        for item in items:
            name, module = item if isinstance(item, tuple) else (None, item)
            if not isinstance(module, nn.Module):
                raise ValueError(f"Compose steps must be nn.Modules, got {type(module).__name__}")
            if name is None:
                base = name = _snake(type(module).__name__)
                k = 2
                while name in named:
                    name, k = f"{base}_{k}", k + 1
            if name in named:
                raise ValueError(f"Compose step name {name!r} is used twice")
            named[name] = module
        self.steps = nn.ModuleDict(named)
        self.disabled: frozenset[str] = frozenset()
        self.disable(*disabled)
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
                generator: torch.Generator | None = None) -> Tensor:
        """Run the enabled steps.

        Args:
            x: Input batch for the first step.
            params: ``{step name: params}`` from an earlier call's ``last_params``,
                replayed for those steps; other random steps draw anew.
            generator: Optional generator shared by the random steps.

        Returns:
            The last step's output.
        """
        used: dict[str, Params] = {}
        for name, step in self.steps.items():
            if name in self.disabled:
                continue
            if isinstance(step, RandomTransform):
                x = step(x, None if params is None else params.get(name), generator)
                if step.training:
                    used[name] = step.last_params
            else:
                x = step(x)
        self.last_params = used
        return x

    def extra_repr(self) -> str:
        return f"disabled={sorted(self.disabled)}" if self.disabled else ""
