"""Writing the activity log: one entry per change that matters to the team.

Call `record` inside the transaction that makes the change, so the entry and the change are
committed together or not at all.
"""

from decimal import Decimal

from accounts.models import Action, ActivityEntry


def record(actor, action: Action, *, job=None, **details) -> ActivityEntry:
    """Append an entry. `job` (a video job) is kept as a snapshot: prompt, model, length, size and
    cost, so the entry reads the same after the job is deleted."""
    subject = {key: _plain(value) for key, value in details.items()}
    if job is not None:
        subject = {**job_snapshot(job), **subject}
    return ActivityEntry.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_name=actor.get_username() if actor is not None and actor.pk else "",
        action=action,
        job_id=job.pk if job is not None else None,
        subject=subject,
    )


def job_snapshot(job) -> dict:
    cost = job.cost
    return {
        "prompt": job.prompt,
        "model": job.model,
        "seconds": job.seconds,
        "size": job.size,
        "cost": str(cost) if cost is not None else None,
        "author": job.author.get_username() if job.author_id and job.author else "",
    }


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        return value
    return str(value)
