from __future__ import annotations

from datetime import datetime

from django.db import models


class Note(models.Model):
    title: models.CharField[str, str] = models.CharField(max_length=100)
    body: models.TextField[str, str] = models.TextField(blank=True)
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.title
