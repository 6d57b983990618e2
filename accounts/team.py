"""The team: adding people, their roles, deactivating and reactivating accounts, set-password
links and monthly budgets.

Each change is one function taking the acting admin: it keeps the team's rules (there is always
an active admin), makes the change and records it in the activity log in one transaction. The
views only parse, check `can(user, "manage_team")` and call these.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Prefetch, Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes
from django.utils.http import base36_to_int, urlsafe_base64_encode
from django.utils.translation import gettext as _

from accounts.activity import record
from accounts.models import Action, Profile, TeamBudget
from accounts.roles import GROUPS, Role

logger = logging.getLogger(__name__)

# Higher gives more: a change to a lower rank takes something away and is confirmed first.
RANK: dict[Role | None, int] = {Role.ADMIN: 3, Role.MEMBER: 2, Role.VIEWER: 1, None: 0}
CENTS = Decimal("0.01")
DEFAULT_EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class TeamError(Exception):
    """A change the team's rules refuse; `message` says why, in the reader's language."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LastAdmin(TeamError):
    """The change would leave the team without an active admin."""


class UsernameTaken(TeamError):
    """Someone already has this username, in any mix of upper and lower case."""


class SetPasswordLinks(PasswordResetTokenGenerator):
    """Tokens for set-password links: valid for 72 hours whatever PASSWORD_RESET_TIMEOUT says,
    for active accounts only, and only the newest link of a person (its hash includes the
    person's link generation, which every new link raises). Django's hash already includes the
    password and the last login, so a link dies once it has been used."""

    key_salt = "muxweb.accounts.team.SetPasswordLinks"
    timeout = 72 * 3600

    def _make_hash_value(self, user, timestamp: int) -> str:
        generation = (
            Profile.objects.filter(user_id=user.pk)
            .values_list("password_link_generation", flat=True)
            .first()
        )
        return f"{super()._make_hash_value(user, timestamp)}-{generation or 0}"

    def check_token(self, user, token) -> bool:
        # Django's own check reads settings.PASSWORD_RESET_TIMEOUT; this one keeps its own.
        if user is None or not user.is_active or not isinstance(token, str):
            return False
        stamp, _sep, _digest = token.partition("-")
        try:
            timestamp = base36_to_int(stamp)
        except ValueError:
            return False
        if not any(
            constant_time_compare(self._make_token_with_timestamp(user, timestamp, secret), token)
            for secret in [self.secret, *self.secret_fallbacks]
        ):
            return False
        return self._num_seconds(self._now()) - timestamp <= self.timeout


set_password_links = SetPasswordLinks()


@dataclass
class Person:
    """One line of the team page. `jobs` and `spent` (this month) are filled in by the view,
    from the jobs, which this app does not import."""

    user: AbstractUser
    role: Role | None
    budget: Decimal | None
    jobs: int = 0
    # Videos rendering at once (videos.fairshare); None: no limit of their own.
    concurrency_limit: int | None = None
    spent: Decimal = Decimal("0.00")


def assigned_role(user) -> Role | None:
    """The role an account holds, active or not (`role_of` answers None for a deactivated
    account). Reads `user.groups.all()`, so that a list prefetches the groups once."""
    if user.is_superuser:
        return Role.ADMIN
    names = {group.name for group in user.groups.all()}
    return next((role for role, name in GROUPS.items() if name in names), None)


def is_demotion(before: Role | None, after: Role | None) -> bool:
    return RANK[after] < RANK[before]


def people() -> list[Person]:
    """Everyone, the active first, each group by username. Three queries whatever the team."""
    role_groups = Group.objects.filter(name__in=GROUPS.values())
    users = get_user_model().objects.order_by("-is_active", Lower("username"), "pk")
    users = users.prefetch_related(Prefetch("groups", queryset=role_groups))
    profiles = {
        user_id: (budget, limit)
        for user_id, budget, limit in Profile.objects.values_list(
            "user_id", "monthly_budget", "concurrency_limit"
        )
    }
    people = []
    for user in users:
        budget, limit = profiles.get(user.pk, (None, None))
        people.append(Person(user, assigned_role(user), budget, concurrency_limit=limit))
    return people


@dataclass
class Roster:
    """The people a list to pick from offers (the gallery's authors): `active`, the accounts with
    a role, and `deactivated`, whose work stays in the history. Each by username."""

    active: list[AbstractUser]
    deactivated: list[AbstractUser]


def roster() -> Roster:
    """The team's people, in one query however long their history."""
    User = get_user_model()
    in_role_group = User.groups.through.objects.filter(
        user_id=OuterRef("pk"), group__name__in=GROUPS.values()
    )
    users = (
        User.objects.filter(Q(is_active=False) | Q(is_superuser=True) | Exists(in_role_group))
        .order_by(Lower("username"), "pk")
        .only("pk", "username", "is_active")
    )
    users = list(users)
    return Roster(
        active=[user for user in users if user.is_active],
        deactivated=[user for user in users if not user.is_active],
    )


def add_person(actor, username: str, email: str, role: Role | str) -> tuple[AbstractUser, str]:
    """A new account with `role` and no password, and the path of its set-password link."""
    role = Role(role)
    User = get_user_model()
    try:
        with transaction.atomic():
            if User.objects.filter(username__iexact=username).exists():
                raise UsernameTaken(_("Someone already has this username."))
            person = User.objects.create_user(username, email=email)
            _set_role(person, role)
            path = _issue_link(person)
            record(actor, Action.ACCOUNT_ADDED, username=username, email=email, role=role.value)
    except IntegrityError:
        # The same name added at the same moment by another admin.
        raise UsernameTaken(_("Someone already has this username.")) from None
    return person, path


def change_role(actor, user, role: Role | str) -> bool:
    """Give `user` `role`; False if they had it already (nothing recorded). Refused with
    LastAdmin if they are the last active admin and `role` is not admin."""
    role = Role(role)
    with transaction.atomic():
        admins = _lock_active_admins()
        person = _lock(user)
        before = assigned_role(person)
        if before == role:
            return False
        if admins == [person.pk]:
            raise LastAdmin(
                _(
                    "%(username)s is the last active admin. Make someone else an admin before "
                    "changing their role."
                )
                % {"username": person.get_username()}
            )
        _set_role(person, role)
        record(
            actor,
            Action.ROLE_CHANGE,
            username=person.get_username(),
            before=before.value if before else None,
            after=role.value,
        )
    _copy_state(person, user)
    return True


def end_sessions(person) -> int:
    """Sign `person` out of every browser: Django only ignores a deactivated account's sessions,
    which would work again after a reactivation. Sessions are few (one per browser of a small
    team), so they are read through rather than indexed by user."""
    from django.contrib.sessions.models import Session

    mine = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if str(session.get_decoded().get(SESSION_KEY)) == str(person.pk)
    ]
    Session.objects.filter(pk__in=mine).delete()
    return len(mine)


def deactivate(actor, user) -> bool:
    """Stop `user` from logging in; their jobs and history stay. Their set-password link dies
    with it. False if they were deactivated already. Refused with LastAdmin for the last active
    admin, the acting admin included."""
    with transaction.atomic():
        admins = _lock_active_admins()
        person = _lock(user)
        if not person.is_active:
            return False
        if admins == [person.pk]:
            raise LastAdmin(
                _(
                    "%(username)s is the last active admin. Make someone else an admin before "
                    "deactivating this account."
                )
                % {"username": person.get_username()}
            )
        person.is_active = False
        person.save(update_fields=["is_active"])
        # A link made before stays dead after a reactivation too, and so do their sessions.
        _next_link_generation(person)
        end_sessions(person)
        role = assigned_role(person)
        record(
            actor,
            Action.ACCOUNT_DEACTIVATED,
            username=person.get_username(),
            role=role.value if role else None,
        )
    _copy_state(person, user)
    return True


def reactivate(actor, user) -> bool:
    """Let `user` log in again, with the role they had. False if they were active already."""
    with transaction.atomic():
        person = _lock(user)
        if person.is_active:
            return False
        person.is_active = True
        person.save(update_fields=["is_active"])
        role = assigned_role(person)
        record(
            actor,
            Action.ACCOUNT_REACTIVATED,
            username=person.get_username(),
            role=role.value if role else None,
        )
    _copy_state(person, user)
    return True


def new_password_link(actor, user) -> str:
    """The path of a new set-password link for `user`; every earlier link of theirs stops
    working. The link itself is never stored or recorded (whoever holds it sets the password);
    the activity log says who made one for whom."""
    with transaction.atomic():
        person = _lock(user)
        if not person.is_active:
            raise TeamError(
                _(
                    "%(username)s is deactivated: reactivate the account before making a "
                    "set-password link."
                )
                % {"username": person.get_username()}
            )
        record(actor, Action.PASSWORD_LINK, username=person.get_username())
        return _issue_link(person)


def set_budget(actor, user, amount: Decimal | None) -> bool:
    """Set `user`'s monthly budget, or the team's when `user` is None; None means no limit.
    An admin may raise, lower or clear it at any time. False if it was that already."""
    if amount is not None:
        if amount < 0:
            raise TeamError(_("A budget cannot be negative."))
        amount = amount.quantize(CENTS)
    with transaction.atomic():
        if user is None:
            TeamBudget.objects.get_or_create(pk=1)
            row = TeamBudget.objects.select_for_update().get(pk=1)
            whose = {"team": True}
        else:
            Profile.objects.get_or_create(user_id=user.pk)
            row = Profile.objects.select_for_update().get(user_id=user.pk)
            whose = {"username": user.get_username()}
        before = row.monthly_budget
        if before == amount:
            return False
        row.monthly_budget = amount
        row.save()
        record(actor, Action.BUDGET_CHANGE, **whose, before=before, after=amount)
    return True


def set_concurrency_limit(actor, user, limit: int | None) -> bool:
    """How many of `user`'s videos may render at the provider at once; None means no limit of
    their own. Jobs past it wait in muxweb (videos.fairshare). False if it was that already."""
    if limit is not None and limit < 1:
        raise TeamError(_("At least one video at once, or empty for no limit."))
    with transaction.atomic():
        Profile.objects.get_or_create(user_id=user.pk)
        row = Profile.objects.select_for_update().get(user_id=user.pk)
        before = row.concurrency_limit
        if before == limit:
            return False
        row.concurrency_limit = limit
        row.save(update_fields=["concurrency_limit"])
        record(
            actor,
            Action.LIMIT_CHANGE,
            username=user.get_username(),
            before=before,
            after=limit,
        )
    return True


def email_configured() -> bool:
    """Whether this site sends email: Django's defaults (SMTP to localhost) count as not set up."""
    return (
        settings.EMAIL_HOST not in ("", "localhost")
        or settings.EMAIL_BACKEND != DEFAULT_EMAIL_BACKEND
    )


def email_link(user, url: str) -> bool:
    """Send `url` to the person, in their language if they chose one. False when they have no
    email or the site sends none; TeamError when sending failed (the link still works)."""
    if not user.email or not email_configured():
        return False
    language = (
        Profile.objects.filter(user_id=user.pk).values_list("language", flat=True).first()
        or translation.get_language()
    )
    with translation.override(language):
        subject = _("Set your muxweb password")
        body = _(
            "Hello %(username)s,\n\n"
            "Open this link to set your password for muxweb:\n\n"
            "%(url)s\n\n"
            "The link works once, for 72 hours. If it has expired, ask an admin for a new one.\n"
        ) % {"username": user.get_username(), "url": url}
    try:
        send_mail(subject, body, None, [user.email])
    except (smtplib.SMTPException, OSError):
        logger.warning("could not email a set-password link to user %s", user.pk, exc_info=True)
        raise TeamError(
            _("The email to %(email)s could not be sent. Copy the link and pass it on yourself.")
            % {"email": user.email}
        ) from None
    return True


def _lock(user) -> AbstractUser:
    """The account's row, read again and locked until the transaction ends."""
    return get_user_model().objects.select_for_update().get(pk=user.pk)


def _lock_active_admins() -> list[int]:
    """The ids of the active admins, their rows locked (PostgreSQL: FOR UPDATE, in id order, so
    that two admins demoting each other at once take turns and the second sees the first's
    change; SQLite: every transaction here is BEGIN IMMEDIATE, one writer at a time)."""
    admins = get_user_model().objects.select_for_update().filter(is_active=True, is_superuser=True)
    return list(admins.order_by("pk").values_list("pk", flat=True))


def _set_role(person, role: Role) -> None:
    """An admin is a superuser with the staff flag, in no role group; a member or viewer is
    neither, and in exactly that role's group. Groups that give no role are left alone."""
    person.groups.remove(*Group.objects.filter(name__in=GROUPS.values()))
    person.is_superuser = person.is_staff = role == Role.ADMIN
    if role != Role.ADMIN:
        group, _created = Group.objects.get_or_create(name=GROUPS[role])
        person.groups.add(group)
    person.save(update_fields=["is_superuser", "is_staff"])


def _next_link_generation(person) -> None:
    Profile.objects.get_or_create(user_id=person.pk)
    Profile.objects.filter(user_id=person.pk).update(
        password_link_generation=F("password_link_generation") + 1
    )


def _issue_link(person) -> str:
    _next_link_generation(person)
    return reverse(
        "accounts-set-password",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(person.pk)),
            "token": set_password_links.make_token(person),
        },
    )


def _copy_state(person, user) -> None:
    """The caller's object says what the database now says (a request's own user included)."""
    user.is_active, user.is_superuser, user.is_staff = (
        person.is_active,
        person.is_superuser,
        person.is_staff,
    )
    user.__dict__.pop("_role_cache", None)
