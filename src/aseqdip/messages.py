"""Lines for the user that are not errors: what a run had to assume or change, on stderr."""

from __future__ import annotations

import sys


def warn(message: str) -> None:
    """``aseqdip: warning: MESSAGE`` on stderr (an option that does not apply, a rescaled input ...)."""
    print(f"aseqdip: warning: {message}", file=sys.stderr)
