"""MkDocs hooks (``hooks:`` in mkdocs.yml): reST roles, reference check.

- Docstrings use reST roles (``:class:`~augkit.Gain```); the rendered pages show
  them as plain code (``Gain``).
- After the build, every public name in ``augkit.__all__`` must have an entry
  (an element whose id is ``augkit.<name>``) in the API reference.

The pages are written in ``docs/`` and include nothing from the README, which
links to them (``tests/test_docs.py`` checks the transform lists of both against
the registry).
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.exceptions import PluginError

ROLE = re.compile(r":(?:class|func|meth|data|attr|mod|exc|obj):<code>(~?)([^<]*)</code>")


#: Where a page gets the tables of the newest ``benchmarks/results/*/gpu-check.json``,
#: generated at build time so that they cannot drift from the result files.
GPU_TABLES = "<!-- gpu-check-tables -->"


#: Where a page gets the search space: every augmentation with its magnitude ``m``, and
#: those left out with the reason (``experiments.search.space``, the data itself).
SEARCH_SPACE = "<!-- search-space-table -->"


def search_space_table() -> str:
    from experiments.search import space as S

    rows = ["| augmentation | what m moves (m = 0: left out) |", "| --- | --- |"]
    rows += [f"| `{n}` | {m.what} |" for n, m in S.MAGNITUDES.items()]
    rows += ["", "Not searchable:", ""]
    rows += [f"- `{n}`: {why}" for n, why in S.EXCLUDED.items()]
    return "\n".join(rows)


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    if SEARCH_SPACE in markdown:
        markdown = markdown.replace(SEARCH_SPACE, search_space_table())
    if GPU_TABLES not in markdown:
        return markdown
    from benchmarks import gpu_report

    summary = gpu_report.load()
    return markdown.replace(GPU_TABLES, gpu_report.render(summary, level=3))


def on_page_content(html: str, page, config, files, **kwargs) -> str:
    return ROLE.sub(lambda m: "<code>" + (m.group(2).rsplit(".", 1)[-1] if m.group(1)
                                          else m.group(2)) + "</code>", html)


def on_post_build(config, **kwargs) -> None:
    import augkit

    site = Path(config.site_dir)
    pages = [p.read_text(errors="replace") for p in (site / "reference").rglob("*.html")]
    missing = [name for name in augkit.__all__
               if not any(f'id="augkit.{name}"' in text for text in pages)]
    if missing:
        raise PluginError("no API reference entry (id=\"augkit.<name>\") under "
                          f"site/reference/ for: {', '.join(missing)}")
