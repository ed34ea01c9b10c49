"""How the command-line entry points exit.

CPython 3.12 under ``python -m`` has a trap: when a Ctrl-C's ``KeyboardInterrupt`` ends a
*string* ``exec``/``eval`` anywhere in the run (a dataclass or namedtuple being created, a
generated function being compiled), the interpreter remembers it, and at exit kills itself
with SIGINT even though the command caught the interrupt and asked for another status. A
parent shell reads that as 130 as well, but a Python parent (``subprocess``, Ray, a test)
sees ``-2``, and a SIGTERM's 143 is lost. A string eval resets that memory, so the entry
points exit through :func:`exit_with`.
"""

from __future__ import annotations

import sys


def exit_with(status: int) -> None:
    """``raise SystemExit(status)``, with the status the command chose kept (see above)."""
    exec("pass", {})  # resets CPython's "a string eval ended with KeyboardInterrupt" flag
    sys.stdout.flush()
    raise SystemExit(status)
