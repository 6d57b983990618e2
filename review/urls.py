"""The review's URLs: stars, titles and notes, comments, approvals, boards, share links, compare."""

from django.urls import path

from review import comments_views, compare_views

urlpatterns: list = [
    path("compare/", compare_views.compare, name="review-compare"),
    path("videos/<job_id:pk>/comments/", comments_views.comment_add, name="review-comment-add"),
    path("comments/<job_id:pk>/", comments_views.comment_show, name="review-comment"),
    path("comments/<job_id:pk>/edit/", comments_views.comment_edit, name="review-comment-edit"),
    path(
        "comments/<job_id:pk>/delete/", comments_views.comment_delete, name="review-comment-delete"
    ),
    path("for-you/", comments_views.for_you, name="review-for-you"),
    path("for-you/poll/", comments_views.mentions_poll, name="review-mentions-poll"),
]
