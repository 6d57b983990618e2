"""The review's URLs: stars, titles and notes, comments, approvals, boards, share links, compare."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
