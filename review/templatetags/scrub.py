"""Template tags for scrubbing cards and the job page's filmstrip (review.filmstrip)."""

from django import template

from review.filmstrip import aspect_of, frames, sprite_layout
from videos.models import Status, VideoJob

register = template.Library()


@register.simple_tag
def sprite(job: VideoJob) -> dict | None:
    """What a card's scrubber and a job page's filmstrip need of a completed job's spritesheet:
    its grid, its frames with their moments, the video's shape; None without one."""
    if job.status != Status.COMPLETED:
        return None
    layout = sprite_layout(job)
    if layout is None:
        return None
    return {
        "layout": layout,
        "frames": frames(job, layout),
        # A string: a float in a template would take the language's decimal mark.
        "aspect": f"{aspect_of(job):.4f}",
    }
