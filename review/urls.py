"""The review's URLs: stars, titles and notes, comments, approvals, boards, share links, compare."""

from django.urls import path

from review import share_views

urlpatterns: list = [
    # Share links. /s/<token>/... is for guests (no login; the token is the key).
    path("s/<str:token>/", share_views.share_page, name="review-share"),
    path("s/<str:token>/unlock", share_views.share_unlock, name="review-share-unlock"),
    path("s/<str:token>/<job_id:job_id>/", share_views.share_job_page, name="review-share-job"),
    path(
        "s/<str:token>/<job_id:job_id>/comment",
        share_views.share_comment,
        name="review-share-comment",
    ),
    path(
        "s/<str:token>/<job_id:job_id>/review",
        share_views.share_review,
        name="review-share-review",
    ),
    path(
        "s/<str:token>/media/<job_id:job_id>/<str:variant>",
        share_views.share_media,
        name="review-share-media",
    ),
    path("videos/<job_id:pk>/share", share_views.share_job, name="review-share-create"),
    path("boards/<job_id:pk>/share", share_views.share_board, name="review-share-board"),
    path("share-links/<job_id:pk>/revoke", share_views.revoke_link, name="review-share-revoke"),
]
