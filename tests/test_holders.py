"""Leases that know their holder (videos.holders): a holder that is gone is seen at once, a
silent one after its heartbeat's grace, a live one keeps its lease."""

import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import make_job
from videos import holders
from videos.models import Lease, Status

pytestmark = pytest.mark.django_db


def dead_process() -> str:
    """The holder name a process of this machine had, once it has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
    host, boot, _pid, _started = holders.this_process().split("/")
    holder = f"{host}/{boot}/{child.pid}/{holders._start_time(child.pid)}"
    assert not holders.is_gone(holder)
    child.communicate(b"\n")
    return holder


def test_a_holder_is_gone_once_its_process_is_and_never_when_on_another_machine():
    assert not holders.is_gone(holders.this_process())
    gone = dead_process()
    assert gone.split("/")[2].isdigit() and holders.is_gone(gone)
    host, boot, pid, started = holders.this_process().split("/")
    assert holders.is_gone(f"{host}/{boot}/{pid}/{int(started) + 1}"), "a reused pid"
    assert holders.is_gone(f"{host}/another-boot/{pid}/{started}"), "before a reboot"
    assert not holders.is_gone(f"elsewhere/{boot}/{pid}/{started}")
    assert not holders.is_gone("")


def test_recover_frees_dead_and_silent_holders_leases_and_makes_their_download_due(member):
    now = timezone.now()
    later = now + timedelta(minutes=6)
    jobs = [
        make_job(member, status=Status.COMPLETED, assets_fetched_at=None, next_poll_at=later)
        for _ in range(3)
    ]
    dead, live = dead_process(), holders.this_process()
    silent = f"elsewhere/{live.split('/', 1)[1]}"
    Lease.objects.create(name=f"fetch:{jobs[0].pk}", holder=dead, expires_at=now + timedelta(10))
    Lease.objects.create(name=f"fetch:{jobs[1].pk}", holder=live, expires_at=now + timedelta(10))
    Lease.objects.create(name=f"fetch:{jobs[2].pk}", holder=silent, expires_at=now)
    Lease.objects.create(name="spritesheet:1", expires_at=now - timedelta(hours=1))

    assert holders.recover() == 2
    assert set(Lease.objects.values_list("name", flat=True)) == {
        f"fetch:{jobs[1].pk}",
        "spritesheet:1",
    }, "a live holder keeps its lease; leases without a holder simply run out"
    for job in jobs:
        job.refresh_from_db()
    assert jobs[0].next_poll_at <= timezone.now() and jobs[2].next_poll_at <= timezone.now()
    assert jobs[1].next_poll_at == later


def test_a_held_lease_is_claimed_once():
    with (
        holders.held("fetch:1", timedelta(minutes=4)) as first,
        holders.held("fetch:1", timedelta(minutes=4)) as second,
    ):
        assert first and not second
    assert not Lease.objects.filter(name="fetch:1").exists()
