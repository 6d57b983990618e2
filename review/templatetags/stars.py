"""What the star, title and approval fragments ask of the viewer: whether a job is starred by them,
and whether they may describe or review it."""

from django import template

from review import approvals, stars

register = template.Library()


@register.simple_tag(takes_context=True)
def starred(context: template.Context, job) -> bool:
    """Whether the viewer starred `job`: one query per request, whatever the number of cards."""
    request = context.get("request")
    return request is not None and job.pk in stars.starred_ids(request)


@register.filter
def describable_by(job, user) -> bool:
    return stars.may_describe(user, job)


@register.filter
def may_review(user) -> bool:
    return approvals.may_review(user)
