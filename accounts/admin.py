"""Admin: the activity log and the people can be read here, never written, changed or deleted."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext

from accounts.models import ActivityEntry


class ReadOnly:
    """An admin whose rows are shown, never added, changed or deleted from there."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ActivityEntry)
class ActivityEntryAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "job_id"]
    list_filter = ["action"]
    search_fields = ["actor_name"]
    readonly_fields = [f.name for f in ActivityEntry._meta.fields]


class PersonAdmin(ReadOnly, UserAdmin):
    """People are read here and managed on the Team page, which keeps the team's rules (an
    active admin always remains, only the newest set-password link works) and writes every
    change to the activity log; an edit here would do neither."""

    def changelist_view(self, request, extra_context=None):
        messages.info(
            request,
            format_html(
                gettext('Add people, change roles and budgets on the <a href="{}">Team page</a>.'),
                reverse("accounts-team"),
            ),
        )
        return super().changelist_view(request, extra_context)


admin.site.unregister(User)
admin.site.register(User, PersonAdmin)
