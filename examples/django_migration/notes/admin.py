from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin

from .models import Note

if TYPE_CHECKING:  # django-stubs makes ModelAdmin generic; Django itself does not
    NoteAdminBase = admin.ModelAdmin[Note]
else:
    NoteAdminBase = admin.ModelAdmin


@admin.register(Note)
class NoteAdmin(NoteAdminBase):
    list_display = ("title", "created")
    search_fields = ("title", "body")
