"""Admin: the model catalogue is edited here; jobs are looked at, not edited."""

from django.contrib import admin

from videos import services
from videos.models import ModelSpec, VideoJob


@admin.register(ModelSpec)
class ModelSpecAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "label",
        "sizes",
        "seconds",
        "prices",
        "can_remix",
        "enabled",
        "position",
    ]
    list_editable = ["enabled", "position"]


@admin.register(VideoJob)
class VideoJobAdmin(admin.ModelAdmin):
    list_display = ["id", "prompt", "author", "model", "status", "progress", "created_at"]
    list_filter = ["status", "model"]
    search_fields = ["prompt", "upstream_id"]
    list_select_related = ["author"]
    readonly_fields = [f.name for f in VideoJob._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    # Deleting goes through the service, as on the job page: the files go too, and the
    # provider's copy.
    def delete_model(self, request, obj: VideoJob) -> None:
        services.delete_job(obj)

    def delete_queryset(self, request, queryset) -> None:
        for job in queryset:
            services.delete_job(job)
