"""The team's roles, and the one question every page, template and admin asks: `can`.

An admin is a superuser; members and viewers are the accounts in the "Members" and "Viewers"
groups. An account with no role sees nothing until an admin gives it one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from django.db import models
from django.utils.translation import pgettext_lazy

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


class Role(models.TextChoices):
    ADMIN = "admin", pgettext_lazy("role", "Admin")
    MEMBER = "member", pgettext_lazy("role", "Member")
    VIEWER = "viewer", pgettext_lazy("role", "Viewer")


# The group that gives each role, highest first: an account in both groups is a member. The names
# stay as they are, existing installs have these groups.
GROUPS = {Role.MEMBER: "Members", Role.VIEWER: "Viewers"}

# Who may do what. "delete" and "check_again" also depend on the job (see `can`); the others do not.
ALLOWED: dict[str, frozenset[Role]] = {
    "view": frozenset({Role.ADMIN, Role.MEMBER, Role.VIEWER}),
    # Generate, remix, retry and duplicate.
    "create": frozenset({Role.ADMIN, Role.MEMBER}),
    "delete": frozenset({Role.ADMIN, Role.MEMBER}),
    # Ask the provider again about a job muxweb gave up on (videos.recheck): its author or an admin.
    "check_again": frozenset({Role.ADMIN, Role.MEMBER}),
    # Make share links for people without an account (review.sharing); viewers only watch.
    "share": frozenset({Role.ADMIN, Role.MEMBER}),
    "import": frozenset({Role.ADMIN}),
    # Remove everything in the trash for good now, before its days are up.
    "empty_trash": frozenset({Role.ADMIN}),
    "use_admin": frozenset({Role.ADMIN}),
    # Everyone's lines on the usage page (the others see their own and the team's total).
    "view_team_usage": frozenset({Role.ADMIN}),
    # The activity log: who did what.
    "view_activity": frozenset({Role.ADMIN}),
    # The team page: adding people, roles, deactivating, set-password links and budgets.
    "manage_team": frozenset({Role.ADMIN}),
}
JOB_ACTIONS = frozenset({"delete", "check_again"})


class Authored(Protocol):
    """What `can` needs to know of a job: whose it is."""

    author_id: int | None


def role_of(user: AbstractBaseUser | AnonymousUser) -> Role | None:
    """The user's role, or None for anonymous and inactive users and accounts in no group.

    Remembered on the user object, so that a request asks the database once however often its
    pages ask (as Django does with permissions)."""
    if not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    if not hasattr(user, "_role_cache"):
        names = set(user.groups.filter(name__in=GROUPS.values()).values_list("name", flat=True))
        user._role_cache = next((role for role, name in GROUPS.items() if name in names), None)
    return user._role_cache


def can(user: AbstractBaseUser | AnonymousUser, action: str, job: Authored | None = None) -> bool:
    """Whether the user may do `action` ("view", "create", "delete", "check_again", "share",
    "import", "empty_trash", "use_admin", "view_team_usage", "view_activity", "manage_team"), to
    `job` for "delete" and "check_again".
    An unknown action, or "delete" without its job, is an error: a typo must neither allow nor
    deny quietly."""
    if action not in ALLOWED:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ALLOWED)}")
    if action in JOB_ACTIONS and job is None:
        raise ValueError(f"{action!r} needs the job it is about")
    role = role_of(user)
    if role not in ALLOWED[action]:
        return False
    if action in JOB_ACTIONS:
        # Members delete (and check again) their own jobs. A viewer does neither, not even to
        # the ones they made as a member before: viewers only watch.
        return role == Role.ADMIN or job.author_id == user.pk
    if action == "use_admin":
        # Django's admin lets in staff accounts only.
        return user.is_staff
    return True


def may_delete_some(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether the user may delete any job at all (their own, or everyone's): a bulk action
    offers "Move to trash" only then."""
    return role_of(user) in ALLOWED["delete"]


def deletable(user: AbstractBaseUser | AnonymousUser, jobs):
    """The jobs of the queryset `jobs` that the user may delete: `can(user, "delete", job)`
    asked of a whole selection at once, in the database."""
    if not may_delete_some(user):
        return jobs.none()
    return jobs if role_of(user) == Role.ADMIN else jobs.filter(author_id=user.pk)
