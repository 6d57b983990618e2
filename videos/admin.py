"""Admin: the model catalogue is edited here; jobs are looked at, not edited."""

from django.contrib import admin, messages
from django.db import transaction
from django.utils.translation import ngettext

from accounts.activity import record
from accounts.models import Action
from accounts.roles import can
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

    # Every change to the catalogue is in the activity log, written with the change.
    def save_model(self, request, obj: ModelSpec, form, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            record(
                request.user,
                Action.CATALOGUE_CHANGE,
                **catalogue_snapshot(obj, "changed" if change else "added"),
            )

    def delete_model(self, request, obj: ModelSpec) -> None:
        with transaction.atomic():
            record(request.user, Action.CATALOGUE_CHANGE, **catalogue_snapshot(obj, "deleted"))
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for spec in queryset:
                record(request.user, Action.CATALOGUE_CHANGE, **catalogue_snapshot(spec, "deleted"))
            super().delete_queryset(request, queryset)


def catalogue_snapshot(spec: ModelSpec, change: str) -> dict:
    return {
        "change": change,
        "model": spec.name,
        "enabled": spec.enabled,
        "sizes": spec.sizes,
        "durations": spec.seconds,
        "prices": spec.prices,
    }


@admin.register(VideoJob)
class VideoJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "prompt",
        "author",
        "model",
        "status",
        "progress",
        "created_at",
        "trashed_at",
    ]
    list_filter = ["status", "model", ("trashed_at", admin.EmptyFieldListFilter)]
    search_fields = ["prompt", "upstream_id"]
    list_select_related = ["author"]
    readonly_fields = [f.name for f in VideoJob._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    # Deleting here is for good, not to the trash (the job page's Move to trash is undoable); it
    # follows the job page's rules and goes through services.delete_job: its author or an
    # admin, never while it runs, and the files and the provider's copy go too. Without a job,
    # Django asks whether to offer deleting at all (the list's bulk action): its own permission
    # answers that, and each selected job is then asked about here.
    def has_delete_permission(self, request, obj: VideoJob | None = None) -> bool:
        if obj is None:
            return super().has_delete_permission(request)
        return can(request.user, "delete", obj) and not obj.is_active

    def delete_model(self, request, obj: VideoJob) -> None:
        try:
            services.delete_job(obj, actor=request.user)
        except services.JobBusy:
            self._refused(request, 1)

    def delete_queryset(self, request, queryset) -> None:
        busy = 0
        for job in queryset:
            try:
                services.delete_job(job, actor=request.user)
            except services.JobBusy:
                busy += 1
        if busy:
            self._refused(request, busy)

    def _refused(self, request, count: int) -> None:
        self.message_user(
            request,
            ngettext(
                "%(n)d job is still running and was not deleted; delete it once it has finished.",
                "%(n)d jobs are still running and were not deleted; delete them once they have "
                "finished.",
                count,
            )
            % {"n": count},
            messages.WARNING,
        )
