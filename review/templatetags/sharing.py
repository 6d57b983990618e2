"""`{% share_links job=job %}` / `{% share_links board=board %}`: the Share section of a job's or
a board's page (make a link, the links so far, revoke), for members and admins; nothing for
others."""

from django import template
from django.urls import reverse
from django.utils import timezone

from accounts.roles import can
from review import sharing
from review.share_views import ShareLinkForm

register = template.Library()

# A page lists at most this many of its links, the newest first.
MAX_LISTED = 20


@register.inclusion_tag("review/partials/share_links.html", takes_context=True)
def share_links(context, job=None, board=None) -> dict:
    request = context["request"]
    if not can(request.user, "share") or (job is not None and job.trashed_at is not None):
        return {"hidden": True}
    if job is not None:
        create_url = reverse("review-share-create", args=[job.pk])
    else:
        create_url = reverse("review-share-board", args=[board.pk])
    links = sharing.links_of(job=job, board=board)[:MAX_LISTED]
    return {
        "csrf_token": context.get("csrf_token"),
        "form": ShareLinkForm(auto_id="share_%s"),
        "create_url": create_url,
        "back": request.get_full_path(),
        "links": [(link, sharing.may_revoke(request.user, link)) for link in links],
        "now": timezone.now(),
    }
