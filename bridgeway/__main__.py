"""``python -m bridgeway``: the same as the ``bridgeway`` command (see ``cli``)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
