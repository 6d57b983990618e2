"""The dashboard's URLs. A job id in a path is its canonical decimal, so any other spelling of a
number (leading zeros, more digits than a database id holds) is a 404 before a view runs."""

from django.urls import path, register_converter

from muxweb.text import IdConverter
from videos import export_views, notifications, views, waiting_views

register_converter(IdConverter, "job_id")

urlpatterns = [
    path("", views.gallery, name="videos-gallery"),
    path("videos/poll", views.gallery_poll, name="videos-gallery-poll"),
    path("videos/select-all", views.select_all, name="videos-select-all"),
    path("videos/bulk/trash", views.bulk_trash, name="videos-bulk-trash"),
    path("videos/export.csv", views.export_jobs, name="videos-export"),
    path("exports/", export_views.exports_page, name="videos-zip-exports"),
    path("exports/<job_id:pk>/", export_views.export_detail, name="videos-zip-export"),
    path(
        "exports/<job_id:pk>/download",
        export_views.export_download,
        name="videos-zip-export-download",
    ),
    path("notifications/", notifications.poll, name="videos-notifications"),
    path("usage/", views.usage, name="videos-usage"),
    path("usage/export.csv", views.usage_csv, name="videos-usage-csv"),
    path("videos/new", views.create_job, name="videos-create"),
    path("videos/import", views.import_jobs, name="videos-import"),
    path("videos/import/status", views.import_status, name="videos-import-status"),
    path("videos/new/options", views.compose_options, name="videos-compose-options"),
    path("videos/<job_id:pk>/", views.job_detail, name="videos-detail"),
    path("videos/<job_id:pk>/media/<str:variant>", views.job_media, name="videos-media"),
    path("videos/<job_id:pk>/remix", views.remix_job, name="videos-remix"),
    path("videos/<job_id:pk>/retry", views.retry_job, name="videos-retry"),
    path("videos/<job_id:pk>/check-again", views.check_again, name="videos-check-again"),
    path("videos/<job_id:pk>/delete", views.delete_job, name="videos-delete"),
    path("videos/<job_id:pk>/restore", views.restore_job, name="videos-restore"),
    path("videos/<job_id:pk>/cancel", waiting_views.cancel_waiting, name="videos-cancel"),
    path("trash/", views.trash_list, name="videos-trash"),
    path("trash/empty", views.empty_trash, name="videos-trash-empty"),
]
