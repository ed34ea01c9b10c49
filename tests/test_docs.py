"""The documentation cannot drift from the code.

- every ``>>>`` example in the library's docstrings runs (doctest, one case per module);
- every public name in ``augkit.__all__`` has an API reference entry, every
  transform a family page;
- every ``python`` code block of the hand-written pages runs;
- every README section the pages include exists;
- the gallery can build every random transform (its pictures are made by
  ``make docs``, which CI runs after the tests).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
import sys
from pathlib import Path

import pytest
import torch

import augkit
from augkit.transforms import random_transforms

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
if str(ROOT) not in sys.path:  # `docs` is a package at the repository root
    sys.path.insert(0, str(ROOT))

MODULES = sorted(m.name for m in pkgutil.walk_packages(augkit.__path__, "augkit."))
# Hand-written pages; docs/gallery/ is generated.
PAGES = sorted(p for p in DOCS.rglob("*.md") if "gallery" not in p.relative_to(DOCS).parts)


def _namespace() -> dict:
    """What a docstring example may assume: ``import torch, augkit as ak; from augkit import *``."""
    return {"torch": torch, "ak": augkit, **{n: getattr(augkit, n) for n in augkit.__all__}}


@pytest.fixture
def clean_registry():
    """Docstring examples may register demo backbones; leave the registry as it was."""
    from augkit.backbones import _registry

    saved = dict(_registry._backbones)
    yield
    _registry._backbones.clear()
    _registry._backbones.update(saved)


@pytest.mark.parametrize("name", ["augkit", *MODULES])
def test_docstring_examples(name, clean_registry):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    out: list[str] = []
    torch.manual_seed(0)
    for test in finder.find(module, name, globs={**vars(module), **_namespace()}):
        runner.run(test, out=out.append)
    failed, attempted = runner.summarize(verbose=False)
    assert failed == 0, f"{failed} of {attempted} docstring examples failed in {name}:\n" + \
        "".join(out)


def test_docstring_examples_exist():
    finder = doctest.DocTestFinder(exclude_empty=True)
    count = sum(len(t.examples) for name in MODULES
                for t in finder.find(importlib.import_module(name), name))
    assert count >= 50, f"only {count} docstring examples found: is the finder broken?"


def _entries(folder: str) -> set[str]:
    text = "\n".join(p.read_text() for p in (DOCS / folder).glob("*.md"))
    return set(re.findall(r"^::: augkit\.([A-Za-z_][A-Za-z0-9_]*)\s*$", text, re.M))


def test_every_public_name_has_a_reference_entry():
    missing = sorted(set(augkit.__all__) - _entries("reference"))
    assert not missing, (f"no `::: augkit.<name>` entry in docs/reference/*.md for {missing}; "
                         "add one (mkdocs build --strict then checks that it resolves)")


def test_every_transform_has_a_family_page():
    text = "\n".join(p.read_text() for p in (DOCS / "transforms").glob("*.md"))
    missing = [n for n in augkit.transforms.__all__
               if n != "RandomTransform" and f"[augkit.{n}]" not in text]
    assert not missing, f"not on any page of docs/transforms/: {missing}"


def _python_blocks():
    for page in PAGES:
        for i, m in enumerate(re.finditer(r"^```python\n(.*?)^```", page.read_text(),
                                          re.M | re.S)):
            yield pytest.param(m.group(1), id=f"{page.relative_to(DOCS)}[{i}]")


@pytest.mark.parametrize("code", list(_python_blocks()))
def test_page_code_runs(code, clean_registry):
    torch.manual_seed(0)
    exec(compile(code, "<docs page>", "exec"), {"__name__": "docs_example"})


def test_readme_includes_resolve():
    pytest.importorskip("mkdocs")
    from docs import hooks

    readme = (ROOT / "README.md").read_text().splitlines()
    found = 0
    for page in PAGES:
        for m in hooks.DIRECTIVE.finditer(page.read_text()):
            opts = m.group("opts")
            until = re.search(r'until="([^"]+)"', opts)
            body = hooks.readme_section(readme, m.group("heading"),
                                        nested="nested" in opts.split(),
                                        until=until.group(1) if until else None)
            assert body.strip(), f"{page.name}: README section {m.group('heading')!r} is empty"
            found += 1
    assert found >= 5


def test_readme_section_stops_at_headings_outside_code():
    from docs.hooks import readme_section

    lines = ["## A", "text", "```python", "# not a heading", "```", "### B", "b", "## C", "c"]
    assert readme_section(lines, "## A") == "text\n```python\n# not a heading\n```"
    assert readme_section(lines, "## A", nested=True, level=1).endswith("## B\nb")
    assert readme_section(lines, "## A", until="```") == "text"


def test_gallery_builds_every_random_transform():
    gallery = pytest.importorskip("docs.gallery")
    clip = gallery.Clip("test", "test", torch.randn(8000) * 0.1, 8000,
                        [torch.randn(4000) * 0.1, torch.randn(6000) * 0.1])
    for name, cls in random_transforms().items():
        t, domain = gallery.build(name, cls, clip)
        assert t.p == 1.0 and domain in ("wave", "spec", "pair"), name


def test_gallery_caption_summarises_params():
    from docs.gallery import summarise

    params = {"apply": torch.tensor([True, False]), "gain_db": torch.tensor([4.2109, -1.0]),
              "width": torch.tensor([[3, 0], [1, 1]]), "edges": torch.arange(14).view(2, 7),
              "noise": torch.zeros(2, 1, 100)}
    assert summarise(params) == ("gain_db = 4.21; width = [3, 0]; edges = [0, 1, 2, …] "
                                 "(7 values); noise: 1×100 values")
