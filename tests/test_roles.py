"""One definition of a role: `role_of` and `can` for every persona, against an explicit table."""

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.urls import reverse

from accounts.roles import Role, can, role_of
from tests.factories import make_job, make_person
from videos.models import VideoJob

pytestmark = pytest.mark.django_db

ACTIONS = ("view", "create", "delete own", "delete member's", "import", "use_admin")

# Each persona's role, then "y" or "-" for each of ACTIONS. "delete own" is about a job the
# persona made (for anonymous: a job whose author left), "delete member's" about one of member's.
EXPECTED: dict[str, tuple[Role | None, str]] = {
    "anonymous": (None, "- - - - - -"),
    "outsider": (None, "- - - - - -"),
    "inactive member": (None, "- - - - - -"),
    "viewer": (Role.VIEWER, "y - - - - -"),
    "member": (Role.MEMBER, "y y y y - -"),
    "other member": (Role.MEMBER, "y y y - - -"),
    "admin": (Role.ADMIN, "y y y y y y"),
    "staff member (not superuser)": (Role.MEMBER, "y y y - - -"),
    "staff in no group": (None, "- - - - - -"),
    # Django's admin lets in staff accounts only, so the link to it would lead nowhere.
    "superuser without the staff flag": (Role.ADMIN, "y y y y y -"),
    "inactive superuser": (None, "- - - - - -"),
    "in both groups": (Role.MEMBER, "y y y - - -"),
}


@pytest.fixture
def personas(member, other_member, viewer, admin) -> dict[str, object]:
    both = make_person("bo", "member")
    both.groups.add(Group.objects.get(name="Viewers"))
    return {
        "anonymous": AnonymousUser(),
        "outsider": make_person("olga"),
        "inactive member": make_person("ines", "member", active=False),
        "viewer": viewer,
        "member": member,
        "other member": other_member,
        "admin": admin,
        "staff member (not superuser)": make_person("stan", "member", is_staff=True),
        "staff in no group": make_person("sten", is_staff=True),
        "superuser without the staff flag": make_person("sue", is_superuser=True),
        "inactive superuser": make_person("ivo", "admin", active=False),
        "in both groups": both,
    }


def answers(user, member) -> str:
    own = VideoJob(author_id=user.pk)
    members = VideoJob(author_id=member.pk)
    results = [
        can(user, "view"),
        can(user, "create"),
        can(user, "delete", own),
        can(user, "delete", members),
        can(user, "import"),
        can(user, "use_admin"),
    ]
    return " ".join("y" if result else "-" for result in results)


def test_every_persona_has_the_role_and_may_do_what_the_table_says(personas, member):
    assert personas.keys() == EXPECTED.keys()
    wrong = []
    for name, user in personas.items():
        role, expected = EXPECTED[name]
        got_role, got = role_of(user), answers(user, member)
        if (got_role, got) != (role, expected):
            wrong.append(f"{name}: expected {role} {expected}, got {got_role} {got}")
    assert not wrong, f"columns: {', '.join(ACTIONS)}\n" + "\n".join(wrong)


def test_a_viewer_may_not_delete_what_they_made_as_a_member(member):
    job = make_job(member)
    assert can(member, "delete", job)
    member.groups.set([Group.objects.get(name="Viewers")])
    demoted = type(member).objects.get(pk=member.pk)
    assert role_of(demoted) == Role.VIEWER
    assert not can(demoted, "delete", job)


def test_an_unknown_action_is_an_error_not_a_no(admin, member):
    for user in (admin, member, AnonymousUser()):
        with pytest.raises(ValueError, match="unknown action"):
            can(user, "delete_all")
        with pytest.raises(ValueError, match="unknown action"):
            can(user, "View")


def test_deleting_without_naming_the_job_is_an_error(admin):
    with pytest.raises(ValueError, match="needs the job"):
        can(admin, "delete")


def test_a_request_asks_the_database_for_the_role_once(member, django_assert_num_queries):
    user = type(member).objects.get(pk=member.pk)
    with django_assert_num_queries(1):
        for action in ("view", "create", "import", "use_admin", "view"):
            can(user, action)
        role_of(user)


def test_the_groups_django_permissions_agree_with_can(personas):
    """Django's admin asks the groups' permissions, muxweb asks `can`: both give one answer."""
    for name, user in personas.items():
        fresh = user if user.pk is None else type(user).objects.get(pk=user.pk)
        assert fresh.has_perm("videos.view_videojob") == can(user, "view"), name
        assert fresh.has_perm("videos.add_videojob") == can(user, "create"), name


def test_migrate_leaves_each_role_group_with_its_permissions(db):
    # No catalogue fixture: the groups as the migrations' post_migrate left them.
    permissions = {
        group.name: sorted(group.permissions.values_list("codename", flat=True))
        for group in Group.objects.filter(name__in=["Members", "Viewers"])
    }
    assert permissions == {
        "Members": ["add_videojob", "view_videojob"],
        "Viewers": ["view_videojob"],
    }


def test_the_admin_link_is_shown_to_those_who_may_use_the_admin(client, admin, member):
    staff_member = make_person("stan", "member", is_staff=True)
    for user, shown in ((admin, True), (staff_member, False), (member, False)):
        client.force_login(user)
        page = client.get(reverse("videos-gallery")).content.decode()
        assert (f'href="{reverse("admin:index")}"' in page) == shown, user.username
