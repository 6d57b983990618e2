"""Monthly budgets: a create's estimate is reserved until the job ends, then settled; a create
past the person's or the team's budget is refused beside the Generate button, and nothing
reaches the provider. Two creates racing for the last dollar cannot both pass."""

import uuid
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Profile, TeamBudget
from tests.factories import CREATE_FORM, make_job, make_person, post_create_form
from tests.test_idempotency import at_once, tasks_not_run
from videos import budgets, lifecycle, services
from videos.models import ModelSpec, Status, VideoJob


def price_of(seconds: int = 4, size: str = "1280x720", model: str = "sora-2") -> Decimal:
    spec = ModelSpec.objects.get(name=model)
    return (spec.price_per_second(size) * seconds).quantize(Decimal("0.01"))


def set_budget(user, amount) -> None:
    profile = Profile.of(user)
    profile.monthly_budget = None if amount is None else Decimal(str(amount))
    profile.save()


def set_team_budget(amount) -> None:
    team = TeamBudget.current()
    team.monthly_budget = None if amount is None else Decimal(str(amount))
    team.save()


def sent_with(provider, prompt: str) -> list[dict]:
    return [job for job in provider.jobs() if job.get("prompt") == prompt]


@pytest.mark.django_db
def test_a_running_job_holds_its_estimate_and_settles_at_its_real_cost_or_nothing(member):
    one = price_of()
    running = make_job(member, status=Status.IN_PROGRESS, reserved_cost=one)
    failed = make_job(member, status=Status.FAILED, reserved_cost=one)
    assert budgets.spent_this_month(member.pk) == one
    # The provider reports 8 seconds: the settled cost is the real one, not the estimate.
    lifecycle.apply_upstream(
        running,
        {"id": running.upstream_id, "status": "completed", "progress": 100, "seconds": "8"},
    )
    running.refresh_from_db()
    assert running.final_cost == price_of(8)
    assert budgets.spent_this_month(member.pk) == price_of(8)
    assert budgets.spent_this_month() == price_of(8)
    assert failed.final_cost is None


@pytest.mark.django_db
def test_the_composer_says_what_is_left_and_warns_as_choices_change(client, member):
    set_budget(member, price_of(4) + Decimal("0.05"))
    client.force_login(member)
    page = client.get(reverse("videos-gallery")).content.decode()
    left = price_of(4) + Decimal("0.05")
    assert f"${left} left of your monthly budget" in page
    assert 'id="budget-refusal"' not in page
    # Twelve seconds would not fit: the redrawn options say so before anything is posted.
    options = client.get(
        reverse("videos-compose-options"), {**CREATE_FORM, "seconds": "12"}
    ).content.decode()
    assert 'id="budget-refusal"' in options
    assert f"only ${left} of your" in options
    assert 'role="alert"' not in options


@pytest.mark.django_db(transaction=True)
def test_a_create_past_the_budget_is_refused_beside_the_button_and_nothing_is_sent(
    client, member, provider
):
    set_budget(member, price_of(4) * 3 / 2)
    client.force_login(member)
    first = post_create_form(client, f"fits {uuid.uuid4()}")
    assert first.reserved_cost == price_of(4)
    prompt = f"one too many {uuid.uuid4()}"
    before = VideoJob.objects.count()
    response = client.post(
        reverse("videos-create"), {"prompt": prompt, **CREATE_FORM}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    # The message sits right after the Generate button, says what is left, and keeps the prompt.
    button = html.index('id="generate"')
    refusal = html.index('id="budget-refusal"')
    assert button < refusal < html.index("</div>", button)
    left = price_of(4) * 3 / 2 - price_of(4)
    assert f"only ${left.quantize(Decimal('0.01'))} of your" in html
    assert 'role="alert"' in html
    assert prompt in html
    assert VideoJob.objects.count() == before
    assert sent_with(provider, prompt) == []


@pytest.mark.django_db
def test_the_team_budget_refuses_anyone_and_an_admin_may_raise_it(client, member, other_member):
    set_team_budget(price_of(4))
    make_job(other_member, status=Status.COMPLETED, final_cost=price_of(4))
    client.force_login(member)
    with tasks_not_run():
        response = client.post(reverse("videos-create"), {"prompt": "team", **CREATE_FORM})
    assert response.status_code == 200
    assert "of the team&#x27;s" in response.content.decode()
    assert not VideoJob.objects.filter(prompt="team").exists()
    set_team_budget(price_of(4) * 2)
    with tasks_not_run():
        response = client.post(reverse("videos-create"), {"prompt": "team", **CREATE_FORM})
    assert response.status_code == 302
    assert VideoJob.objects.get(prompt="team").reserved_cost == price_of(4)


@pytest.mark.django_db
def test_remix_and_retry_are_refused_past_the_budget_too(member):
    source = make_job(member, status=Status.COMPLETED, final_cost=price_of(4))
    failed = make_job(member, status=Status.FAILED)
    set_budget(member, price_of(4))
    with pytest.raises(budgets.OverBudget):
        services.create_job(
            author=member,
            spec=ModelSpec.objects.get(name="sora-2"),
            prompt="remix",
            seconds=4,
            size="1280x720",
            remix_of=source,
        )
    with pytest.raises(budgets.OverBudget):
        services.resubmit_job(failed, author=member)
    assert VideoJob.objects.count() == 2


@pytest.mark.django_db
def test_imported_jobs_count_but_last_month_and_failures_do_not(member):
    from datetime import timedelta

    from django.utils import timezone

    make_job(None, status=Status.COMPLETED, imported=True, final_cost=Decimal("2.00"))
    make_job(
        member,
        status=Status.COMPLETED,
        final_cost=Decimal("5.00"),
        completed_at=timezone.now() - timedelta(days=40),
    )
    make_job(member, status=Status.FAILED, reserved_cost=Decimal("3.00"))
    assert budgets.spent_this_month() == Decimal("2.00")
    assert budgets.spent_this_month(member.pk) == Decimal("0.00")


def test_two_creates_racing_for_the_last_dollar_cannot_both_pass(
    transactional_db, catalogue, provider
):
    """Six members post at once with room for exactly one job in the team's budget: one job is
    made and sent, five are refused. Run on SQLite and on PostgreSQL (DATABASE_URL)."""
    set_team_budget(price_of(4) * Decimal("1.5"))
    clients = []
    for index in range(6):
        person = make_person(f"racer{index}", "member")
        client = Client()
        client.force_login(person)
        clients.append(client)
    prompt = f"race {uuid.uuid4()}"

    def create(client: Client):
        def post():
            return client.post(reverse("videos-create"), {"prompt": prompt, **CREATE_FORM})

        return post

    responses = at_once([create(client) for client in clients])
    assert sorted(response.status_code for response in responses) == [200] * 5 + [302]
    assert VideoJob.objects.filter(prompt=prompt).count() == 1
    assert budgets.spent_this_month() == price_of(4)
    assert len(sent_with(provider, prompt)) == 1
