"""The review's URLs: stars, titles and notes, comments, approvals, boards, share links, compare."""

from django.urls import path

from review import compare_views

urlpatterns: list = [
    path("compare/", compare_views.compare, name="review-compare"),
]
