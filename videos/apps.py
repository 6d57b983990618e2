"""App config: after every migrate, the team's roles and the background schedule exist."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _

# Role name -> permissions. Members make videos; viewers only watch. Admins are superusers.
ROLES = {
    "Members": ["view_videojob", "add_videojob"],
    "Viewers": ["view_videojob"],
}
SWEEP_SCHEDULE = "videos: poll running jobs"


def ensure_roles_and_schedule(sender, **kwargs) -> None:
    from django.contrib.auth.models import Group, Permission
    from django_q.models import Schedule

    for role, codenames in ROLES.items():
        group, _created = Group.objects.get_or_create(name=role)
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="videos", codename__in=codenames)
        )
    # A safety net: restarts the self-renewing poll sweep should a worker die while holding it.
    Schedule.objects.update_or_create(
        name=SWEEP_SCHEDULE,
        defaults={
            "func": "videos.tasks.poll_sweep",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )


class VideosConfig(AppConfig):
    name = "videos"
    verbose_name = _("Videos")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from videos import checks  # noqa: F401  (registers the system checks)

        post_migrate.connect(ensure_roles_and_schedule, sender=self)
