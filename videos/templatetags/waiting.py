"""What the card and the job page show of a job waiting for a slot (videos.fairshare)."""

from django import template

from accounts.roles import can
from videos import fairshare

register = template.Library()


@register.simple_tag(takes_context=True)
def waiting_place(context: template.Context, job) -> fairshare.Place | None:
    """The job's place in line; the line is read once per request, whatever the cards."""
    request = context.get("request")
    return None if request is None else fairshare.place_of(request, job)


@register.filter
def cancellable_by(job, user) -> bool:
    """Its author or an admin may cancel a waiting job: who may delete it."""
    return can(user, "delete", job)
