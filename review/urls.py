"""The review's URLs: stars, titles and notes, comments, approvals, boards, share links, compare.

Ids in paths use the "job_id" converter that videos.urls registers (a canonical decimal id)."""

from django.urls import path

from review import boards_views

urlpatterns: list = [
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
