"""A griffe extension for the API reference (``extensions:`` in mkdocs.yml).

griffe reads the sources statically. Three things it cannot see by itself:

- ``augkit.__all__`` and ``augkit.transforms.__all__`` are computed at import
  time (the import list *is* the name list), so ``from .transforms import *``
  exports nothing statically: the extension imports those two packages and adds
  an alias for every public name, so ``::: augkit.Gain`` resolves.
- Class attributes documented with ``#:`` comments (``RandomTransform.identity``,
  ``gate``, ...) get those comments as docstrings, as Sphinx autodoc reads them
  (a comment covers the assignments right under it: ``ndims`` and ``expects``).
- Some docstrings in ``augkit.functional`` document several parameters on one
  line (``top, left: ...``), which griffe's Google parser reports as unknown
  parameters; strict mode would fail on that. For that subpackage only, the
  unknown-parameter check is off; elsewhere it stays on, so a renamed argument in
  a transform's docstring still fails the build.
"""

from __future__ import annotations

import importlib
import inspect
import re

import griffe

DYNAMIC_ALL = ("augkit", "augkit.transforms")
ASSIGNMENT = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*(:[^=]+)?=")


class AugkitDocs(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, loader, **kwargs) -> None:
        if pkg.path != "augkit":
            return
        for path in DYNAMIC_ALL:
            module = pkg if path == "augkit" else pkg[path.split(".", 1)[1]]
            runtime = importlib.import_module(path)
            names = list(runtime.__all__)
            module.exports = names
            for name in names:
                if name in module.members and not module.members[name].is_alias:
                    continue  # defined right there (e.g. __version__)
                obj = getattr(runtime, name)
                target = (f"{obj.__name__}" if inspect.ismodule(obj)
                          else f"{obj.__module__}.{obj.__qualname__}")
                module.set_member(name, griffe.Alias(name, target, parent=module))

    def on_attribute_instance(self, *, node, attr: griffe.Attribute, agent, **kwargs) -> None:
        if attr.docstring is not None or attr.lineno is None or not attr.parent:
            return
        lines = attr.module.lines
        i = attr.lineno - 2  # the line above; a `#:` comment covers the assignments under it
        while 0 <= i < len(lines) and ASSIGNMENT.match(lines[i]):
            i -= 1
        comment = []
        while 0 <= i < len(lines) and lines[i].strip().startswith("#:"):
            comment.insert(0, lines[i].strip()[2:].strip())
            i -= 1
        if comment:
            attr.docstring = griffe.Docstring(" ".join(comment), lineno=i + 2, parent=attr)

    def on_function_instance(self, *, node, func: griffe.Function, agent, **kwargs) -> None:
        if func.path.startswith("augkit.functional.") and func.docstring is not None:
            func.docstring.parser_options = {**(func.docstring.parser_options or {}),
                                             "warn_unknown_params": False}
