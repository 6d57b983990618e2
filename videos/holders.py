"""Leases that know their holder, kept alive by a heartbeat: work held by a process that is gone
is taken over within seconds, never twice at once.

A lease held this way names its holder (host, boot, process id and the process's start time)
and runs out STALE_AFTER after its last heartbeat, renewed every HEARTBEAT_EVERY seconds by a
thread while the work runs. It is free again when:
- its heartbeat stopped (the holder died, on any machine): STALE_AFTER later, or
- its holder is a process of this machine that no longer exists (killed, the machine rebooted,
  its pid reused by another process): at once. Nothing else can be that sure.

`recover` frees such leases and makes their work due again; it runs when a worker process
starts (a restarted muxweb takes over at once) and at the start of every poll sweep.
"""

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import cache
from pathlib import Path

from django.db import DatabaseError, connection, connections
from django.utils import timezone

from videos.models import Lease, VideoJob

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 3.0
# Five missed heartbeats: a holder whose database is slow for a few seconds keeps its lease.
STALE_AFTER = timedelta(seconds=15)
# The prefix of the download lock of a job ("fetch:<job id>", videos.downloads).
FETCH_PREFIX = "fetch:"
# The prefix of the lease on a job's create while it is in flight (videos.lifecycle.submit_job).
SUBMIT_PREFIX = "submit:"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """When the process started, in clock ticks since boot ("" if it does not exist): a pid
    reused by another process has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces: fields are counted after its closing ")".
    fields = stat.rsplit(")", 1)[1].split()
    # A zombie (killed, not yet reaped by its parent) runs no more.
    if fields[0] in ("Z", "X"):
        return ""
    return fields[19]


@cache
def _this_machine() -> tuple[str, str]:
    return socket.gethostname(), _boot_id()


def this_process() -> str:
    """The holder name of this process. Not cached: a forked worker is another process."""
    host, boot = _this_machine()
    pid = os.getpid()
    return f"{host}/{boot}/{pid}/{_start_time(pid)}"


def is_gone(holder: str) -> bool:
    """Whether the holder is surely not running: a process of this machine (this boot) that no
    longer exists, or a process of this machine before it rebooted. A holder on another machine
    is never known to be gone: its lease runs out when its heartbeat stops."""
    try:
        host, boot, pid, started = holder.split("/")
    except ValueError:
        return False
    this_host, this_boot = _this_machine()
    if host != this_host or not boot or not this_boot or not started:
        return False
    return boot != this_boot or _start_time(int(pid)) != started


@contextmanager
def held(name: str, fallback: timedelta) -> Iterator[bool]:
    """Claim the lease `name` for this process and keep it alive while the block runs; yields
    whether it was claimed. Released at the end.

    Inside a transaction (tests that run tasks inline) no other connection could renew it: the
    lease then simply lasts `fallback`, as leases without a holder do.
    """
    if connection.in_atomic_block:
        claimed = Lease.claim(name, fallback)
        try:
            yield claimed
        finally:
            if claimed:
                Lease.release(name)
        return
    holder = this_process()
    if not Lease.claim(name, STALE_AFTER, holder=holder):
        yield False
        return
    stop = threading.Event()
    beat = threading.Thread(
        target=_heartbeat, args=(name, holder, stop), name=f"heartbeat {name}", daemon=True
    )
    beat.start()
    try:
        yield True
    finally:
        stop.set()
        beat.join()
        Lease.objects.filter(name=name, holder=holder).delete()


def _heartbeat(name: str, holder: str, stop: threading.Event) -> None:
    try:
        while not stop.wait(HEARTBEAT_EVERY):
            try:
                kept = Lease.objects.filter(name=name, holder=holder).update(
                    expires_at=timezone.now() + STALE_AFTER
                )
            except DatabaseError as exc:
                log.warning("lease %s: heartbeat failed (%s)", name, exc)
                continue
            if not kept:
                log.error("lease %s: lost to another holder; its work may run twice", name)
                return
    finally:
        # This thread's own connection.
        connections.close_all()


def recover() -> int:
    """Free the heartbeat leases whose holder is gone or silent, and make their work due again:
    a job whose download died is downloaded again at once. Returns how many were freed."""
    now = timezone.now()
    freed = 0
    for lease in Lease.objects.exclude(holder=""):
        if lease.expires_at > now and not is_gone(lease.holder):
            continue
        # Conditional: a holder that renewed meanwhile, or another recovery, keeps it.
        if not Lease.objects.filter(
            name=lease.name, holder=lease.holder, expires_at=lease.expires_at
        ).delete()[0]:
            continue
        freed += 1
        log.warning(
            "lease %s: its holder %s is gone, taking its work over", lease.name, lease.holder
        )
        # The work claimed its job for TASK_LEASE (its next_poll_at): due now. The sweep then
        # downloads again a job whose download died, and looks at the provider for one whose
        # create was in flight (it is never sent blindly again).
        for prefix in (FETCH_PREFIX, SUBMIT_PREFIX):
            job_id = lease.name.removeprefix(prefix)
            if lease.name.startswith(prefix) and job_id.isdigit():
                VideoJob.objects.filter(pk=int(job_id), next_poll_at__gt=now).update(
                    next_poll_at=now
                )
    return freed


def recover_and_resume() -> None:
    """`recover`, then a sweep to hand the freed work out, if anything was freed."""
    from videos.queue import kick_poll_sweep

    if recover():
        kick_poll_sweep()
