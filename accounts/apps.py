"""App config: after every migrate, each role's group exists with its Django permissions."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate

from accounts.roles import GROUPS, Role

# Django's own permissions for each role's group, for the staff accounts among them in Django's
# admin. What people may do in muxweb is decided by accounts.roles.can, not by these.
PERMISSIONS_APP = "videos"
GROUP_PERMISSIONS = {
    Role.MEMBER: ["view_videojob", "add_videojob"],
    Role.VIEWER: ["view_videojob"],
}


def ensure_role_groups(sender=None, **kwargs) -> None:
    """The role groups with their permissions; safe to run again, as every migrate does."""
    from django.contrib.auth.models import Group, Permission

    for role, codenames in GROUP_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=GROUPS[role])
        group.permissions.set(
            Permission.objects.filter(
                content_type__app_label=PERMISSIONS_APP, codename__in=codenames
            )
        )


def record_lockout(sender, request, username, ip_address, **kwargs) -> None:
    """A login lockout goes into the activity log (django-axes' signal)."""
    from accounts.activity import record
    from accounts.models import Action

    record(None, Action.LOGIN_LOCKOUT, username=str(username or "")[:150], address=ip_address)


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_logged_in

        from accounts.preferences import on_login

        user_locked_out.connect(record_lockout, dispatch_uid="accounts-record-lockout")
        user_logged_in.connect(on_login, dispatch_uid="accounts-preferences-on-login")
        # Run when the app that owns the permissions has migrated: Django creates them then
        # (its handler is connected before this one), and this app migrates before it.
        post_migrate.connect(ensure_role_groups, sender=self.apps.get_app_config(PERMISSIONS_APP))
