"""MkDocs hooks (``hooks:`` in mkdocs.yml): README sections, reST roles, reference check.

- ``<!-- readme: "### Heading" [nested] [level=N] [until="text"] -->`` on a line of
  its own is replaced by the body of that README section, so the pages that
  repeat the README (quick start, contract, runner, benchmarks) cannot drift
  from it. The body ends at the next heading (with ``nested``: the next one of
  the same or a higher level), or at the first line that starts with ``until``.
  ``level=N`` is the level the section's own heading has on the page; the
  headings inside it move by the same amount. A heading that is not in the
  README fails the build, naming it.
- Docstrings use reST roles (``:class:`~augkit.Gain```); the rendered pages show
  them as plain code (``Gain``).
- After the build, every public name in ``augkit.__all__`` must have an entry
  (an element whose id is ``augkit.<name>``) in the API reference.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.exceptions import PluginError

DIRECTIVE = re.compile(r'^<!--\s*readme:\s*"(?P<heading>[^"]+)"(?P<opts>[^>]*?)\s*-->\s*$', re.M)
HEADING = re.compile(r"^(#{1,6})\s")
ROLE = re.compile(r":(?:class|func|meth|data|attr|mod|exc|obj):<code>(~?)([^<]*)</code>")


def _readme(config) -> list[str]:
    return (Path(config.config_file_path).parent / "README.md").read_text().splitlines()


def readme_section(lines: list[str], heading: str, nested: bool = False,
                   level: int | None = None, until: str | None = None) -> str:
    """The body of README section ``heading`` (its heading line, or a prefix of it)."""
    heading = heading.strip()
    in_fence = False
    start = src_level = None
    body: list[str] = []
    for line in lines:
        is_fence = line.lstrip().startswith(("```", "~~~"))
        in_fence ^= is_fence
        match = None if (in_fence or is_fence) else HEADING.match(line)
        if start is None:
            if match and (line.strip() == heading or line.strip().startswith(heading)):
                start, src_level = True, len(match.group(1))
            continue
        if match and (not nested or len(match.group(1)) <= src_level):
            break
        if until and line.startswith(until):
            break
        if match and level is not None:
            shifted = max(1, len(match.group(1)) + level - src_level)
            line = "#" * shifted + line[len(match.group(1)):]
        body.append(line)
    if start is None:
        raise PluginError(f"README.md has no section {heading!r} (docs/hooks.py include)")
    return "\n".join(body).strip("\n")


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    if "<!--" not in markdown:
        return markdown
    lines = None

    def replace(m: re.Match) -> str:
        nonlocal lines
        lines = lines if lines is not None else _readme(config)
        opts = m.group("opts")
        level = re.search(r"level=(\d)", opts)
        until = re.search(r'until="([^"]+)"', opts)
        return readme_section(lines, m.group("heading"), nested="nested" in opts.split(),
                              level=int(level.group(1)) if level else None,
                              until=until.group(1) if until else None)

    return DIRECTIVE.sub(replace, markdown)


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
