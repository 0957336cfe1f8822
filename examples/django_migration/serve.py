"""Serve the Django migration example on uvicorn with a fresh database (the demo runs this).

    python -m examples.django_migration.serve [--host 127.0.0.1] [--port 8000]

Migrates a SQLite database in a temporary directory (removed at exit), adds a few notes,
then runs uvicorn on ``examples.django_migration.asgi:app``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.django_migration.serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bridgeway-django-example-") as tmp:
        os.environ["DJANGO_EXAMPLE_DB"] = str(Path(tmp) / "db.sqlite3")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_migration.settings")
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        from django.db import connection

        from .notes.models import Note

        for title in ("Written by Django's ORM", "Listed by a Django view", "Served via ASGI"):
            Note.objects.create(title=title)
        connection.close()

        import uvicorn

        uvicorn.run("examples.django_migration.asgi:app", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
