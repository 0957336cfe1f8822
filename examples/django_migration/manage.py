#!/usr/bin/env python
"""Django's command-line utility for the example: python examples/django_migration/manage.py"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    # The project is the package examples.django_migration: make its root importable.
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_migration.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
