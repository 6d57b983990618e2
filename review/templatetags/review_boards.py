"""Template tags of the boards: what the job page's board box needs, asked from the template so
that the job page's view stays the gallery's."""

from django import template

from review import boards
from review.boards_views import AddToBoardForm

register = template.Library()


@register.simple_tag(takes_context=True)
def job_boards(context, job) -> dict:
    """The boards the job is on, and (for who may add it to one) the form to add it."""
    user = context["request"].user
    may_add = boards.may_change_boards(user) and job.trashed_at is None
    return {
        "on_boards": list(boards.boards_of(job)),
        "form": AddToBoardForm() if may_add else None,
    }
