"""The review's URLs: stars, titles and notes, comments, approvals, boards, share links, compare.
Ids in paths use the "job_id" converter that videos.urls registers (a canonical decimal id)."""

from django.urls import path

from review import (
    approvals_views,
    boards_views,
    comments_views,
    compare_views,
    share_views,
    stars_views,
)

urlpatterns: list = [
    path("videos/<job_id:pk>/star", stars_views.star, name="review-star"),
    path("videos/<job_id:pk>/describe", stars_views.describe, name="review-describe"),
    path("videos/<job_id:pk>/review", approvals_views.review, name="review-set"),
    path("compare/", compare_views.compare, name="review-compare"),
    path("videos/<job_id:pk>/comments/", comments_views.comment_add, name="review-comment-add"),
    path("comments/<job_id:pk>/", comments_views.comment_show, name="review-comment"),
    path("comments/<job_id:pk>/edit/", comments_views.comment_edit, name="review-comment-edit"),
    path(
        "comments/<job_id:pk>/delete/", comments_views.comment_delete, name="review-comment-delete"
    ),
    path("for-you/", comments_views.for_you, name="review-for-you"),
    path("for-you/poll/", comments_views.mentions_poll, name="review-mentions-poll"),
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
    path("boards/", boards_views.board_list, name="review-boards"),
    path("boards/new", boards_views.board_create, name="review-board-create"),
    path("boards/add", boards_views.add_selection, name="review-boards-add-selection"),
    path("boards/<job_id:pk>/", boards_views.board_detail, name="review-board"),
    path("boards/<job_id:pk>/move", boards_views.board_move, name="review-board-move"),
    path("boards/<job_id:pk>/remove", boards_views.board_remove, name="review-board-remove"),
    path("boards/<job_id:pk>/rename", boards_views.board_rename, name="review-board-rename"),
    path("boards/<job_id:pk>/delete", boards_views.board_delete, name="review-board-delete"),
    path("videos/<job_id:pk>/boards", boards_views.job_boards, name="review-job-boards"),
]
