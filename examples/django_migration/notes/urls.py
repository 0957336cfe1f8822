from __future__ import annotations

from django.urls import path

from . import views

app_name = "notes"

urlpatterns = [
    path("", views.index, name="index"),
    path("notes/<int:pk>/", views.detail, name="detail"),
    path("export.csv", views.export_csv, name="export"),
    path("stream/held/", views.held_stream, name="held-stream"),
    path("stream/release/", views.release_stream, name="release-stream"),
    path("debug/connections/", views.connection_report, name="connections"),
]
