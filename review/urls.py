"""The review's URLs: stars, titles and notes, comments, approvals, boards, share links, compare."""

from django.urls import path

from review import approvals_views, stars_views

# A job id is `job_id`, the converter videos.urls registers (included first).
urlpatterns: list = [
    path("videos/<job_id:pk>/star", stars_views.star, name="review-star"),
    path("videos/<job_id:pk>/describe", stars_views.describe, name="review-describe"),
    path("videos/<job_id:pk>/review", approvals_views.review, name="review-set"),
]
