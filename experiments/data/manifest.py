"""Write a ``path,label,split`` CSV manifest with group-disjoint splits.

Splitting by speaker (or artist, or recording session) is the honest way to
evaluate: no group is in two splits. The group is read from each file name
with a regular expression.

    python -m experiments.data.manifest ../shared/data/fsdd fsdd.csv \\
        --group '^\\d+_(?P<group>[a-z]+)_' --val theo --test yweweler
    python -m experiments.ablate --data fsdd.csv --split manifest ...
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections import Counter
from pathlib import Path

from ..io import atomic_write_text
from .scan import scan_dataset


def build_rows(folder: Path, pattern: str, val: set[str], test: set[str]) -> list[dict]:
    regex = re.compile(pattern)
    if "group" not in regex.groupindex:
        raise ValueError(f"--group must have a named group (?P<group>...), got {pattern!r}")
    files, labels, _ = scan_dataset(folder)
    rows, unmatched = [], []
    for path, label in zip(files, labels, strict=True):
        m = regex.search(path.name)
        if m is None:
            unmatched.append(path.name)
            continue
        group = m.group("group")
        split = "test" if group in test else "val" if group in val else "train"
        rows.append({"path": str(path.resolve()), "label": label, "split": split,
                     "group": group})
    if unmatched:
        raise ValueError(f"--group {pattern!r} does not match {len(unmatched)} file(s), e.g. "
                         f"{unmatched[:3]}")
    groups = {r["group"] for r in rows}
    missing = (val | test) - groups
    if missing:
        raise ValueError(f"group(s) {sorted(missing)} not found; groups are {sorted(groups)}")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.data.manifest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="a folder-per-class dataset")
    p.add_argument("out", help="the CSV to write")
    p.add_argument("--group", required=True, help="regex with (?P<group>...) on the file name")
    p.add_argument("--val", default="", help="comma list of groups for validation")
    p.add_argument("--test", default="", help="comma list of groups for test")
    args = p.parse_args(argv)
    split = lambda s: {g for g in s.split(",") if g}  # noqa: E731
    try:
        rows = build_rows(Path(args.folder), args.group, split(args.val), split(args.test))
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["path", "label", "split", "group"])
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(args.out, buf.getvalue())
    counts = Counter(r["split"] for r in rows)
    print(f"wrote {args.out}: {len(rows)} files, " + ", ".join(
        f"{k} {counts[k]}" for k in ("train", "val", "test")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
