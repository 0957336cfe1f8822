from __future__ import annotations

from django.apps import AppConfig


class NotesConfig(AppConfig):
    name = "examples.django_migration.notes"
    label = "notes"
    verbose_name = "Notes"

    def ready(self) -> None:
        # The views module counts requests through Django's signals: connect the counters
        # at start-up, not when the URLconf is first loaded (during the first request).
        from . import views  # noqa: F401
