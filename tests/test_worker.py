"""A real `manage.py qcluster` process does the work: submit, poll sweep, download."""

import pytest

from tests.conftest import wait_for
from tests.factories import post_create_form
from videos.models import Status

pytestmark = pytest.mark.worker


def test_real_worker_takes_a_job_from_form_post_to_saved_files(qcluster, member, client, settings):
    client.force_login(member)
    job = post_create_form(client, "Rain on a tin roof, close up")

    def settled() -> bool:
        assert qcluster.poll() is None, "the worker process died"
        job.refresh_from_db()
        return job.status == Status.FAILED or job.assets_fetched_at is not None

    wait_for(settled, timeout=60, every=0.3)
    assert job.status == Status.COMPLETED, (job.error_code, job.error_message)
    assert job.upstream_id
    for variant in ("video", "thumbnail", "spritesheet"):
        assert (settings.MEDIA_ROOT / job.asset(variant).name).stat().st_size > 0
