"""The documentation cannot drift from the code.

- every ``>>>`` example in the library's docstrings runs (doctest, one case per module);
- every public name in ``augkit.__all__`` has an API reference entry; the transforms
  listed in the README and on the family pages are exactly the registry's;
- every ``python`` code block of the README and of the hand-written pages runs;
- the README stays short, its links resolve, and no page quotes test counts;
- the gallery can build every random transform, and its pictures' text is readable
  at the size the pages show them (the pictures are made by ``make docs``, which CI
  runs after the tests); table cells never break a name mid-word; the API
  reference's "Returns" tables name no value after a word of the sentence.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import keyword
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

README = ROOT / "README.md"
MODULES = sorted(m.name for m in pkgutil.walk_packages(augkit.__path__, "augkit."))
# Hand-written pages; docs/gallery/ is generated.
PAGES = sorted(p for p in DOCS.rglob("*.md") if "gallery" not in p.relative_to(DOCS).parts)
#: Every public transform class: the registry (augkit/transforms/__init__.py's imports).
TRANSFORMS = set(augkit.transforms.__all__) - {"RandomTransform"}


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


def test_the_family_pages_list_the_registry():
    """Every transform has a row in a family page's table, and every row is a transform."""
    rows = set()
    for page in (DOCS / "transforms").glob("*.md"):
        rows |= set(re.findall(r"^\| \[`(\w+)`\]\[augkit\.(?:\w+)\]", page.read_text(), re.M))
    assert TRANSFORMS - rows == set(), f"not in a table of docs/transforms/: {TRANSFORMS - rows}"
    assert rows - TRANSFORMS == set(), f"docs/transforms/ lists non-transforms: {rows - TRANSFORMS}"


def _readme_section(heading: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_the_readme_lists_the_registry():
    table = _readme_section("Transforms")
    listed = [n for line in table.splitlines() if line.startswith("| ")
              for n in re.findall(r"`([A-Z]\w+)`", line.split("|")[2])]
    assert len(listed) == len(set(listed)), f"listed twice in the README: {listed}"
    assert TRANSFORMS - set(listed) == set(), f"missing from the README's table: " \
        f"{TRANSFORMS - set(listed)}"
    assert set(listed) - TRANSFORMS == set(), f"not transforms: {set(listed) - TRANSFORMS}"
    assert set(random_transforms()) <= set(listed)


def test_the_readme_lists_the_backbones():
    pytest.importorskip("timm")
    text = _readme_section("Transforms")
    sentence = text[text.index("`ak.list_backbones()` gives"):text.index("@ak.register_backbone")]
    assert sorted(re.findall(r"`([a-z]\w+)`", sentence)) == sorted(augkit.list_backbones())


def test_the_readme_is_short_and_its_links_resolve():
    text = README.read_text()
    assert len(text.splitlines()) <= 300, "README.md over 300 lines: move detail to docs/"
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert local, "no relative links found: is the pattern broken?"
    broken = [link for link in local if not (ROOT / link).exists()]
    assert not broken, f"README links to missing files: {broken}"


def test_no_page_quotes_test_counts():
    """Counts that change with every commit (tests, cases) go stale; say what ran instead."""
    pattern = re.compile(r"\b\d[\d,]*\s+(?:tests?|test cases|CUDA cases|cases|passed)\b", re.I)
    stale = [(p.name, m.group(0)) for p in [README, *PAGES]
             for m in pattern.finditer(p.read_text())]
    assert not stale, f"counts that change with every commit: {stale}"


#: What only the caller knows, so that a transform cannot default it; the contract page
#: names each (docs/contract.md), the README names the kinds.
NO_DEFAULT = {"sample_rate", "length", "noises", "irs", "steps", "chain", "transforms",
              "n_freq"}


def test_arguments_without_defaults_are_the_documented_ones():
    required = {name: [n for n, p in inspect.signature(getattr(augkit, name)).parameters.items()
                       if p.default is inspect.Parameter.empty
                       and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
                for name in TRANSFORMS}
    undocumented = {name: sorted(set(r) - NO_DEFAULT) for name, r in required.items()
                    if set(r) - NO_DEFAULT}
    assert not undocumented, f"required arguments the docs do not mention: {undocumented}"
    contract = (DOCS / "contract.md").read_text()
    assert all(f"`{n}`" in contract or f"({n})" in contract for n in NO_DEFAULT), \
        [n for n in NO_DEFAULT if f"`{n}`" not in contract and f"({n})" not in contract]


def _python_blocks():
    for page in [README, *PAGES]:
        for i, m in enumerate(re.finditer(r"^```python\n(.*?)^```", page.read_text(),
                                          re.M | re.S)):
            yield pytest.param(m.group(1), id=f"{page.relative_to(ROOT)}[{i}]")


@pytest.mark.parametrize("code", list(_python_blocks()))
def test_page_code_runs(code, clean_registry):
    """A block that opens with ``# augkit/<path>.py`` is that file: it runs as that module
    (relative imports and all), without being written there."""
    torch.manual_seed(0)
    namespace = {"__name__": "docs_example"}
    file = re.match(r"# (augkit/[\w/]+)\.py\n", code)
    if file:
        module = file.group(1).replace("/", ".")
        namespace = {"__name__": module, "__package__": module.rsplit(".", 1)[0]}
    exec(compile(code, "<docs page>", "exec"), namespace)


def test_python_blocks_are_found():
    ids = [p.id for p in _python_blocks()]
    assert any(i.startswith("README.md") for i in ids) and len(ids) >= 10, ids


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


@pytest.mark.parametrize("quick", [True, False], ids=["quick", "full"])
def test_gallery_text_is_readable_as_displayed(quick, tmp_path):
    """The pages show a picture at its pixel size (one per CSS pixel, 96 per inch) while it
    fits the text column: it must fit, and every text in it must show at 8 pt or more."""
    np = pytest.importorskip("numpy")
    gallery = pytest.importorskip("docs.gallery")
    from matplotlib.image import imread
    from matplotlib.text import Text

    style = gallery.QUICK if quick else gallery.FULL
    fe = gallery.Frontend(16000)
    spec = np.random.default_rng(0).uniform(-80, 0, (fe.n_mels, 150))
    wave = np.random.default_rng(1).normal(0, 0.1, 32000)
    figures = {
        "pair": gallery.draw_pair(spec, spec, fe, style, waves=(wave, wave)),
        "spectrogram pair": gallery.draw_pair(spec, spec, fe, style),
        "frontend": gallery.draw_pair(spec, spec, fe, style, waves=(wave, wave), linear=True,
                                      before_wave_only=True, titles=("waveform", "power mel")),
        "two scales": gallery.draw_two_scales(10 ** (spec / 10), spec, fe, style),
    }
    for what, fig in figures.items():
        path = tmp_path / f"{what}.png"
        fig.savefig(path, bbox_inches="tight")  # draws every tick label
        width = imread(path).shape[1]
        assert width <= 680, f"{what}: {width} px wide, shrunk to fit the text column"
        texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert len(texts) > 10, what
        small = sorted({(t.get_text(), round(t.get_fontsize() * fig.dpi / 96, 1))
                        for t in texts if t.get_fontsize() * fig.dpi / 96 < 8})
        assert not small, f"{what}: text under 8 pt as displayed: {small}"


def _css_rules(css: str) -> list[tuple[str, str]]:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    return [(sel.strip(), body) for sel, body in re.findall(r"([^{}]+)\{([^}]*)\}", css)]


def test_table_cells_do_not_break_names_mid_word():
    """The theme lets inline code break anywhere (``word-break: break-word``), which split
    class names across lines in the family tables; the site's CSS undoes it in tables."""
    rules = _css_rules((DOCS / "css" / "extra.css").read_text())
    in_tables = [body for sel, body in rules
                 if any("table" in s and s.split()[-1].startswith("code")
                        for s in sel.split(","))]
    assert any(re.search(r"word-break:\s*(normal|keep-all)", b) for b in in_tables), \
        "no rule sets word-break: normal on code in tables (docs/css/extra.css)"
    assert not any(re.search(r"break-all|break-word|anywhere", b) for b in in_tables)


def test_returns_sections_name_no_word_of_a_sentence():
    """A Google-style "Returns:" item is ``name: text`` when its line starts with a word and
    a colon, so a continuation line that is not indented (``in :attr:`x`: ...``) becomes a
    returned value named ``in`` in the API reference. Indent continuation lines."""
    griffe = pytest.importorskip("griffe")
    package = griffe.load("augkit", search_paths=[str(ROOT)], docstring_parser="google",
                          extensions=griffe.load_extensions("docs/griffe_ext.py:AugkitDocs"))
    bad, seen, found = [], set(), 0

    def walk(obj):
        nonlocal found
        if obj.path in seen or obj.is_alias:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            for section in obj.docstring.parsed:
                if section.kind.value in ("returns", "yields"):
                    for item in section.value:
                        found += 1
                        if item.name and (keyword.iskeyword(item.name) or item.name.islower()
                                          and item.name in SENTENCE_WORDS):
                            bad.append(f"{obj.path}: {item.name!r}")
        for member in obj.members.values():
            walk(member)

    walk(package)
    assert found >= 20, f"only {found} Returns items found: is the walk broken?"
    assert not bad, f"Returns items named after a word of the sentence: {bad}"


#: Words that start a wrapped line of prose, never the name of a returned value.
SENTENCE_WORDS = {"a", "an", "and", "as", "at", "by", "for", "from", "in", "is", "it", "of",
                  "on", "or", "the", "to", "with"}


#: Paths the pages name only as examples of files a user writes.
EXAMPLE_PATHS = {"augkit/transforms/dc_offset.py", "augkit/transforms/__init__.py"}


def test_paths_and_commands_named_in_the_docs_exist():
    """Files (`experiments/...`, `tests/...`) and `python -m` modules the README and the
    pages name are there: a restructure that moves them has to move the docs too."""
    paths, modules = set(), set()
    for page in [README, *PAGES]:
        text = page.read_text()
        paths |= set(re.findall(r"`((?:augkit|experiments|benchmarks|tests|tools|docs)/"
                                r"[\w./-]*)`", text))
        modules |= set(re.findall(r"python -m ((?:experiments|tools|docs|benchmarks)[\w.]*)",
                                  text))
    assert len(paths) > 10 and "experiments.ablate" in modules, (paths, modules)
    missing = sorted(p for p in paths - EXAMPLE_PATHS if not (ROOT / p).exists())
    assert not missing, f"named in the docs but not in the repository: {missing}"
    unknown = sorted(m for m in modules
                     if not (ROOT / (m.replace(".", "/") + ".py")).exists()
                     and not (ROOT / m.replace(".", "/") / "__main__.py").exists())
    assert not unknown, f"`python -m` modules named in the docs that do not exist: {unknown}"
