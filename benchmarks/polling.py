"""Polling economy: upstream GETs per job and completion delay, against the simulator.

    .venv/bin/python benchmarks/polling.py [--jobs 200] [--render 60]

Three runs in one go, each with its own simulator and N jobs of `--render` simulated seconds:
  (a) muxweb without webhooks: the real poll sweep (sweep.run_poll_sweep) until all finish;
  (b) muxweb with webhooks working: the simulator posts signed webhooks to muxweb's real
      receiver (served here over HTTP), the sweep runs beside it as the safety net;
  (c) the baseline: every job polled once a second until it ends, like the reference SDK.
It prints GET /videos/{id} requests per job and the delay from the provider's completion to
muxweb recording it, with (a) and (b) as ratios of (c). Downloads are left out: this measures
status traffic. Not part of the test suite; its numbers are not asserted.
"""

import argparse
import base64
import os
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RETRIEVE = re.compile(r"^/v1/videos/[^/]+$")


def setup_django(data_dir: str, secret: str) -> None:
    os.environ.update(
        MUXWEB_DATA_DIR=data_dir, MUXWEB_WEBHOOK_SECRET=secret, MUXWEB_LOG_LEVEL="ERROR"
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muxweb.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def counting_simulator(**options):
    from videos.upstream.simulator import Simulator

    class CountingSimulator(Simulator):
        """The simulator, counting the status requests it answers."""

        retrieves = 0

        def dispatch(self, request):
            if request.method == "GET" and RETRIEVE.match(request.path):
                with self._count_lock:
                    self.retrieves += 1
            return super().dispatch(request)

    sim = CountingSimulator(poll_after_ms=2000, **options)
    sim._count_lock = threading.Lock()
    return sim.start()


def upstream_done_at(sim, video_id: str) -> float:
    job = sim._jobs[video_id]
    return job.created_at + job.render_seconds


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def run_muxweb(label: str, jobs: int, render: float, webhook_secret: str | None) -> dict:
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.wsgi import get_wsgi_application

    from videos import lifecycle, services, sweep
    from videos.models import ModelSpec, Status, VideoJob, WebhookEvent

    VideoJob.objects.all().delete()
    WebhookEvent.objects.all().delete()
    lifecycle._webhooks_seen = (0.0, False)
    server = None
    options = {"render_seconds": render}
    if webhook_secret:
        server = make_server(
            "127.0.0.1",
            0,
            get_wsgi_application(),
            server_class=ThreadingWSGIServer,
            handler_class=QuietHandler,
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        options.update(
            webhook_url=f"http://127.0.0.1:{server.server_port}/webhooks/videos",
            webhook_secret=webhook_secret,
        )
        # Webhooks are known to work: an earlier delivery was taken.
        WebhookEvent.objects.create(
            webhook_id="evt_earlier", event_type="video.completed", video_id="v"
        )
    sim = counting_simulator(**options)
    settings.MUXWEB_API_BASE, settings.MUXWEB_API_KEY = sim.base_url, sim.api_key
    author = User.objects.get_or_create(username="bench")[0]
    spec = ModelSpec.objects.get(name="sora-2")
    for i in range(jobs):
        services.create_job(
            author=author, spec=spec, prompt=f"{label} {i}", seconds=4, size="720x1280"
        )
    started = time.monotonic()
    while VideoJob.objects.exclude(status__in=[Status.COMPLETED, Status.FAILED]).exists():
        sweep.run_poll_sweep()
        if time.monotonic() - started > render * 4 + 60:
            raise SystemExit(f"{label}: jobs did not finish")
        time.sleep(0.05)
    delays = [
        job.updated_at.timestamp() - upstream_done_at(sim, job.upstream_id)
        for job in VideoJob.objects.filter(status=Status.COMPLETED)
    ]
    result = {"label": label, "gets": sim.retrieves / jobs, "delays": delays}
    sim.stop()
    if server:
        server.shutdown()
    return result


def run_baseline(jobs: int, render: float) -> dict:
    from videos.upstream.client import VideosClient

    sim = counting_simulator(render_seconds=render)
    client = VideosClient(sim.base_url, sim.api_key, timeout=(5, 30))
    ids = [
        client.create(prompt=f"baseline {i}", model="sora-2", seconds=4, size="720x1280")["id"]
        for i in range(jobs)
    ]
    seen_done: dict[str, float] = {}

    def watch(video_id: str) -> None:
        while True:
            video, _hint = client.retrieve(video_id)
            if video["status"] in ("completed", "failed"):
                seen_done[video_id] = time.time()
                return
            time.sleep(1.0)  # the reference SDK's fixed pace

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(watch, ids))
    delays = [seen_done[v] - upstream_done_at(sim, v) for v in ids]
    sim.stop()
    return {"label": "(c) baseline, 1 s polling", "gets": sim.retrieves / jobs, "delays": delays}


def describe(result: dict, baseline: dict | None) -> str:
    delays = sorted(result["delays"])
    p95 = delays[max(int(len(delays) * 0.95) - 1, 0)]
    ratio = f"  {result['gets'] / baseline['gets']:.2f}x baseline GETs" if baseline else ""
    return (
        f"{result['label']:<32} GETs/job {result['gets']:6.2f}{ratio}   completion visible after "
        f"median {statistics.median(delays):5.2f} s, p95 {p95:5.2f} s, max {delays[-1]:5.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--render", type=float, default=60.0, help="simulated seconds per job")
    args = parser.parse_args()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    setup_django(tempfile.mkdtemp(prefix="muxweb-bench-"), secret)
    from django_q.conf import Conf

    from videos import lifecycle, sweep

    Conf.SYNC = True  # tasks run here, in this process
    # Status traffic only, no downloads: neither a completion nor the sweep starts one.
    lifecycle.enqueue_fetch = sweep.enqueue_fetch = lambda job: None

    now = datetime.now(tz=UTC)
    print(f"{args.jobs} jobs of {args.render:g} simulated seconds each, {now:%Y-%m-%d %H:%M} UTC")
    baseline_box: dict = {}
    baseline_thread = threading.Thread(
        target=lambda: baseline_box.update(run_baseline(args.jobs, args.render))
    )
    baseline_thread.start()  # beside (a): it only talks HTTP to its own simulator
    without = run_muxweb("(a) muxweb, no webhooks", args.jobs, args.render, None)
    baseline_thread.join()
    with_hooks = run_muxweb("(b) muxweb, webhooks", args.jobs, args.render, secret)
    print(describe(baseline_box, None))
    print(describe(without, baseline_box))
    print(describe(with_hooks, baseline_box))
    targets = [
        ("(a) at most 1/5 of the baseline's GETs", without["gets"] <= baseline_box["gets"] / 5),
        ("(b) at most 2 GETs per job", with_hooks["gets"] <= 2),
        ("(b) completion visible in under 3 s", max(with_hooks["delays"]) < 3),
    ]
    for text, met in targets:
        print(f"  {'met' if met else 'MISSED'}: {text}")


if __name__ == "__main__":
    main()
