"""A real `manage.py qcluster` process does the work: submit, poll sweep, download."""

import pytest
from django.urls import reverse

from tests.conftest import wait_for
from videos.models import Status, VideoJob

pytestmark = pytest.mark.worker


def test_real_worker_takes_a_job_from_form_post_to_saved_files(qcluster, member, client, settings):
    client.force_login(member)
    response = client.post(
        reverse("videos-create"),
        {
            "prompt": "Rain on a tin roof, close up",
            "model": "sora-2",
            "seconds": "4",
            "size": "720x1280",
        },
    )
    assert response.status_code == 302
    job = VideoJob.objects.get()

    def settled() -> bool:
        assert qcluster.poll() is None, "the worker process died"
        job.refresh_from_db()
        return job.status == Status.FAILED or job.assets_fetched_at is not None

    wait_for(settled, timeout=60, every=0.3)
    assert job.status == Status.COMPLETED, (job.error_code, job.error_message)
    assert job.upstream_id
    for variant in ("video", "thumbnail", "spritesheet"):
        assert (settings.MEDIA_ROOT / job.asset(variant).name).stat().st_size > 0
