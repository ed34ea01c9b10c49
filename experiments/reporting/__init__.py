"""Reporting: results.csv and summary.md with verdicts in words (:mod:`.summary`), the
plots (:mod:`.plots`), and SwanLab logging (:mod:`.tracking`)."""
