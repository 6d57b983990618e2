"""The job page's comments, drawn from its template with one tag: `{% job_comments job %}`.

The job page belongs to videos, which does not import review: the tag reads the comments itself
(one query however many, with their authors) and draws templates/review/partials/comments_job.html.
"""

from django import template

from review import comments as service
from review.comments_views import section_context

register = template.Library()


@register.filter
def timecode(seconds) -> str:
    return service.timecode(seconds)


@register.inclusion_tag("review/partials/comments_job.html", takes_context=True)
def job_comments(context, job) -> dict:
    request = context["request"]
    return section_context(request, job)
