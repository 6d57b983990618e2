"""App config: after every migrate, the background schedules exist and SQLite's search index has
its triggers; a worker process that starts takes over the work of processes that are gone."""

import logging

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _

SWEEP_SCHEDULE = "videos: poll running jobs"
EXPORTS_SCHEDULE = "videos: remove expired exports"
TRASH_SCHEDULE = "videos: remove old jobs from the trash"


# The background schedules, by name: (task, Schedule type, minutes between runs or None).
SCHEDULES = {
    # A safety net: restarts the self-renewing poll sweep should a worker die while holding it.
    SWEEP_SCHEDULE: ("videos.tasks.poll_sweep", "MINUTES", 1),
    # Finished zip exports are downloadable for a while; then their files go.
    EXPORTS_SCHEDULE: ("videos.tasks.remove_expired_exports", "MINUTES", 10),
    # Jobs past their days in the trash go within the hour.
    TRASH_SCHEDULE: ("videos.tasks.purge_trash", "HOURLY", None),
}


def ensure_schedule(sender=None, **kwargs) -> None:
    from django_q.models import Schedule

    for name, (func, schedule_type, minutes) in SCHEDULES.items():
        defaults = {"func": func, "schedule_type": getattr(Schedule, schedule_type), "repeats": -1}
        if minutes is not None:
            defaults["minutes"] = minutes
        Schedule.objects.update_or_create(name=name, defaults=defaults)


def ensure_search_index(sender=None, using: str = "default", **kwargs) -> None:
    from django.db import connections

    from videos.search import repair_sqlite_index

    repair_sqlite_index(connections[using])


def take_over_dead_work(sender, proc_name: str = "", **kwargs) -> None:
    from videos.holders import recover_and_resume

    try:
        recover_and_resume()
    except Exception:
        # Never keeps a worker from starting: the next sweep tries again.
        logging.getLogger(__name__).exception("could not take over the work of dead processes")


class VideosConfig(AppConfig):
    name = "videos"
    verbose_name = _("Videos")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from videos import checks  # noqa: F401  (registers the system checks)

        post_migrate.connect(ensure_schedule, sender=self)
        # A worker process starting (a restart after a crash) takes over at once the work that
        # processes now gone held (videos.holders).
        post_spawn.connect(take_over_dead_work, dispatch_uid="videos.take_over_dead_work")
        post_migrate.connect(ensure_search_index, sender=self)
