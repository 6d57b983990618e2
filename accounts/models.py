"""People's records: the activity log (append-only), profiles and budgets."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Action(models.TextChoices):
    CREATE = "create", _("Generated a video")
    REMIX = "remix", _("Remixed a video")
    RETRY = "retry", _("Tried a video again")
    CHECK_AGAIN = "check_again", _("Checked a video with the provider again")
    DELETE = "delete", _("Deleted a video")
    TRASH = "trash", _("Moved a video to the trash")
    RESTORE = "restore", _("Restored a video from the trash")
    PURGE = "purge", _("Removed a video from the trash for good")
    IMPORT = "import", _("Imported from the provider")
    ROLE_CHANGE = "role_change", _("Changed a role")
    ACCOUNT_ADDED = "account_added", _("Added an account")
    ACCOUNT_DEACTIVATED = "account_deactivated", _("Deactivated an account")
    ACCOUNT_REACTIVATED = "account_reactivated", _("Reactivated an account")
    BUDGET_CHANGE = "budget_change", _("Changed a budget")
    LIMIT_CHANGE = "limit_change", _("Changed how many videos someone may render at once")
    CANCEL = "cancel", _("Cancelled a waiting video")
    PASSWORD_LINK = "password_link", _("Made a set-password link")
    CATALOGUE_CHANGE = "catalogue_change", _("Changed the model catalogue")
    LOGIN_LOCKOUT = "login_lockout", _("Login locked out")
    # Review: approvals, titles and notes, comments, boards, share links.
    REVIEW = "review", _("Reviewed a video")
    DESCRIBE = "describe", _("Changed a title or note")
    COMMENT = "comment", _("Commented on a video")
    COMMENT_DELETE = "comment_delete", _("Deleted a comment")
    BOARD_CHANGE = "board_change", _("Changed a board")
    SHARE_CREATE = "share_create", _("Made a share link")
    SHARE_REVOKE = "share_revoke", _("Revoked a share link")
    SHARE_VIEW = "share_view", _("Opened a share link")


class AppendOnly(Exception):
    """An activity entry is never changed or removed once written."""


class ActivityQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnly("activity entries cannot be changed")

    def delete(self):
        raise AppendOnly("activity entries cannot be deleted")


class ActivityEntry(models.Model):
    """Who did what and when. `subject` is a snapshot of what the entry concerns (a job's prompt,
    model and cost; an account's name and role), so the entry outlives the row it speaks of."""

    at = models.DateTimeField(_("when"), default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("who"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The actor's name as it was: kept when the account is renamed or gone.
    actor_name = models.CharField(_("who"), max_length=150, blank=True)
    action = models.CharField(_("what"), max_length=30, choices=Action.choices)
    # A job's id, without a foreign key: the entry stays when the job goes.
    job_id = models.BigIntegerField(_("video"), null=True, blank=True)
    subject = models.JSONField(_("details"), default=dict, blank=True)

    objects = ActivityQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name = _("activity entry")
        verbose_name_plural = _("activity log")
        indexes = [
            # The activity page filtered by person, newest first: WHERE actor_id = ? ORDER BY id.
            models.Index(fields=["actor", "-id"], name="activity_actor_newest"),
            # ... by action: WHERE action = ? ORDER BY id DESC.
            models.Index(fields=["action", "-id"], name="activity_action_newest"),
            # ... by date: WHERE at >= ? AND at < ?.
            models.Index(fields=["at"], name="activity_at"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name or '-'} {self.action} {self.at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise AppendOnly("activity entries cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("activity entries cannot be deleted")


class Profile(models.Model):
    """What a person chose for themselves on My account, and the budget an admin gave them."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="profile"
    )
    # Empty: the browser's language (the header's switch, else Accept-Language).
    language = models.CharField(
        _("language"), max_length=10, blank=True, choices=settings.LANGUAGES
    )
    # An IANA name ("Europe/Paris"); empty: the server's TIME_ZONE.
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    browser_notifications = models.BooleanField(_("browser notifications"), default=False)
    # What this person may spend in a month; empty: no limit of their own.
    monthly_budget = models.DecimalField(
        _("monthly budget"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    # How many of this person's videos may render at the provider at once; more wait in muxweb
    # (videos.fairshare). Empty: no limit of their own.
    concurrency_limit = models.PositiveSmallIntegerField(_("videos at once"), null=True, blank=True)
    # Raised each time a set-password link is issued: only the newest link works.
    password_link_generation = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")

    def __str__(self) -> str:
        return str(self.user)

    @classmethod
    def of(cls, user) -> "Profile":
        profile, _created = cls.objects.get_or_create(user=user)
        return profile


class TeamBudget(models.Model):
    """The team's monthly budget: one row (pk 1). Creates lock it, so that two creates racing
    for the last dollar take turns."""

    monthly_budget = models.DecimalField(
        _("team monthly budget"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("team budget")
        verbose_name_plural = _("team budget")

    def __str__(self) -> str:
        return str(self.monthly_budget or "-")

    @classmethod
    def current(cls) -> "TeamBudget":
        budget, _created = cls.objects.get_or_create(pk=1)
        return budget
