"""Admin: the activity log can be read here, never written, changed or deleted."""

from django.contrib import admin

from accounts.models import ActivityEntry


@admin.register(ActivityEntry)
class ActivityEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "job_id"]
    list_filter = ["action"]
    search_fields = ["actor_name"]
    readonly_fields = [f.name for f in ActivityEntry._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
