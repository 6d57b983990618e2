from django.urls import path

from videos import views

urlpatterns = [
    path("", views.gallery, name="videos-gallery"),
    path("videos/poll", views.gallery_poll, name="videos-gallery-poll"),
    path("videos/new", views.create_job, name="videos-create"),
    path("videos/import", views.import_jobs, name="videos-import"),
    path("videos/new/options", views.compose_options, name="videos-compose-options"),
    path("videos/<int:pk>/", views.job_detail, name="videos-detail"),
    path("videos/<int:pk>/media/<str:variant>", views.job_media, name="videos-media"),
    path("videos/<int:pk>/remix", views.remix_job, name="videos-remix"),
    path("videos/<int:pk>/retry", views.retry_job, name="videos-retry"),
    path("videos/<int:pk>/delete", views.delete_job, name="videos-delete"),
]
