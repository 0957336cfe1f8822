"""The new half: FastAPI endpoints that took over /api/ from Django.

They keep using the Django models (the database and its migrations stay Django's), in
plain ``def`` endpoints, which FastAPI runs in its thread pool: the Django ORM is sync
and must not run on the event loop. Django closes its connections when a request of its
own ends; these endpoints are not Django requests, so ``django_db()`` does it.

Import this module after ``django.setup()`` (``asgi.py`` does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.db import close_old_connections, connection
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from .notes.models import Note

api = FastAPI(title="Notes API (FastAPI, taking over /api/ from Django)")


@contextmanager
def django_db() -> Iterator[None]:
    """Around ORM work in a thread that is not a Django request: a fresh connection, closed."""
    close_old_connections()
    try:
        yield
    finally:
        connection.close()


class NoteIn(BaseModel):
    title: str = Field(min_length=1, max_length=100)
    body: str = ""


class NoteOut(NoteIn):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created: datetime


@api.get("/health")
async def health() -> dict[str, str]:
    return {"served_by": "FastAPI"}


@api.get("/notes")
def list_notes() -> list[NoteOut]:
    with django_db():
        return [NoteOut.model_validate(note) for note in Note.objects.all()]


@api.get("/notes/{note_id}")
def get_note(note_id: int) -> NoteOut:
    with django_db():
        note = Note.objects.filter(pk=note_id).first()
        if note is None:
            raise HTTPException(status_code=404, detail="no such note")
        return NoteOut.model_validate(note)


@api.post("/notes", status_code=201)
def create_note(note: NoteIn) -> NoteOut:
    with django_db():
        return NoteOut.model_validate(Note.objects.create(title=note.title, body=note.body))
