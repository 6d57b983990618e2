"""The provider budget: muxweb sharing one key's requests per minute, against each job backing off
on its own, with the real worker against a rate-limited simulator.

    .venv/bin/python benchmarks/budget.py                      # 200 jobs, 10 members, 25 and 60 rpm
    .venv/bin/python benchmarks/budget.py --jobs 40 --rpm 60 --render-seconds 10   # a few minutes

For each requests-per-minute limit, two runs side by side, each in a process of its own with a
throwaway data directory and SQLite database, its own simulator (`rpm_limit` set, renders of
`--render-seconds`) and the real worker (`manage.py qcluster`, schedules and all):
  (a) muxweb as it is: the shared budget (MUXWEB_PROVIDER_RPM set to the limit, as an admin would;
      with --learn-limit left unset, so the budget learns it from the simulator's headers);
  (b) the baseline: MUXWEB_PROVIDER_BUDGET=off, every job backing off on its own after a 429, as
      muxweb did before the budget.
`--jobs` jobs come from `--members` members, all at once: the first member submits a quarter of
them (the "50 jobs at once" of issue 12), the others share the rest; with --concurrency, jobs
beyond it wait in muxweb in fair order (videos/fairshare.py) in both runs. Each run reports the
429s the simulator answered, the most requests it admitted in any 60 s, upstream requests per
completed job by kind (create, poll, each download variant, list), the wall time from the first
create to the last file saved against the floor (jobs x 2 / rpm minutes), the delay from the
provider finishing a job to muxweb showing it completed (read from the database every half second)
and to its files being saved, and the wait each member's jobs saw before they were sent. Not part
of the test suite; its numbers are not asserted.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MANAGE = str(ROOT / "manage.py")
MODES = {"on": "(a) muxweb, shared budget", "off": "(b) baseline, each job alone"}
SAMPLE_SECONDS = 0.5


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(int(round(share * len(ordered) + 0.5)) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]


def request_kind(method: str, path: str, query: dict) -> str:
    parts = path.rstrip("/").split("/")  # "", "v1", "videos", id, "content"
    if method == "POST":
        return "remix" if parts[-1] == "remix" else "create"
    if method == "DELETE":
        return "delete"
    if len(parts) == 3:
        return "list"
    if parts[-1] == "content":
        return f"download {query.get('variant', 'video')}"
    return "poll"


def recording_simulator(**options):
    from videos.upstream.simulator import Simulator

    class RecordingSimulator(Simulator):
        """The simulator, noting the kind of every request it admitted (not refused with 429)."""

        def dispatch(self, request):
            reply = super().dispatch(request)
            if reply.status != 429:
                with self._kinds_lock:
                    self.kinds[request_kind(request.method, request.path, request.query)] += 1
            return reply

    sim = RecordingSimulator(**options)
    sim.kinds = Counter()
    sim._kinds_lock = threading.Lock()
    return sim.start()


def plan(jobs: int, members: int) -> list[int]:
    """Which member submits each job, in submission order: the first member a quarter at once,
    then the others in turn."""
    heavy = jobs // 4 if members > 1 else jobs
    order = [0] * heavy
    others = list(range(1, members)) or [0]
    order += [others[i % len(others)] for i in range(jobs - heavy)]
    return order


def run_one(mode: str, args: argparse.Namespace, out: Path) -> None:
    """One run, in this process: simulator, throwaway muxweb, worker; the result as JSON."""
    data = tempfile.mkdtemp(prefix=f"muxweb-budget-{mode}-")
    sim = recording_simulator(
        render_seconds=args.render_seconds,
        rpm_limit=args.rpm,
        concurrency_limit=args.concurrency,
        media_dir=Path(data) / "sim",
    )
    for name in [key for key in os.environ if key.startswith("MUXWEB_")]:
        del os.environ[name]  # self-contained: no provider or setting from this shell
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="muxweb.settings",
        MUXWEB_DATA_DIR=data,
        MUXWEB_API_BASE=sim.base_url,
        MUXWEB_API_KEY=sim.api_key,
        MUXWEB_PROVIDER_BUDGET=mode,
        MUXWEB_PROVIDER_RPM=str(args.rpm if mode == "on" and not args.learn_limit else 0),
        MUXWEB_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    if args.concurrency:
        os.environ["MUXWEB_PROVIDER_CONCURRENCY"] = str(args.concurrency)
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from videos import services
    from videos.models import ModelSpec, Status, VideoJob

    call_command("migrate", verbosity=0)
    members = [User.objects.create(username=f"member{i + 1:02d}") for i in range(args.members)]
    group = Group.objects.filter(name="Members").first()
    if group:
        group.user_set.add(*members)
    spec = ModelSpec.objects.get(name="sora-2")
    log_path = Path(data) / "qcluster.log"
    worker = subprocess.Popen(
        [sys.executable, MANAGE, "qcluster"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=open(log_path, "wb"),  # noqa: SIM115  (the child's for its whole life)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    floor = args.jobs * 2 / args.rpm * 60
    started_clock = time.monotonic()  # the simulator's request log is on this clock
    give_up = args.give_up_after or 3 * floor + 5 * args.render_seconds + 300
    started = time.time()
    for i, member in enumerate(plan(args.jobs, args.members)):
        services.create_job(
            author=members[member],
            spec=spec,
            prompt=f"Budget run {mode} {i}: a lighthouse at dawn",
            seconds=4,
            size="720x1280",
        )
    seen_done: dict[int, float] = {}
    finished = False
    last_report = time.monotonic()
    while time.time() - started < give_up:
        rows = list(
            VideoJob.objects.values_list("id", "status", "assets_fetched_at", "fetch_given_up")
        )
        now = time.time()
        for pk, status, _saved, _given_up in rows:
            if status == Status.COMPLETED and pk not in seen_done:
                seen_done[pk] = now
        done = [
            r
            for r in rows
            if r[1] == Status.FAILED or (r[1] == Status.COMPLETED and (r[2] or r[3]))
        ]
        if time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            print(
                f"  {mode} at {args.rpm} rpm: {len(done)}/{len(rows)} done "
                f"after {now - started:.0f} s",
                file=sys.stderr,
            )
        if len(done) == len(rows):
            finished = True
            break
        time.sleep(SAMPLE_SECONDS)
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()

    jobs = list(VideoJob.objects.all())
    completed = [job for job in jobs if job.status == Status.COMPLETED]
    saved = [job.assets_fetched_at.timestamp() for job in completed if job.assets_fetched_at]
    shown, files, waits, late = [], [], defaultdict(list), []
    names = {member.pk: member.username for member in members}
    for job in jobs:
        upstream = sim._jobs.get(job.upstream_id) if job.upstream_id else None
        if upstream is None:
            continue
        waits[names[job.author_id]].append(upstream.created_at - job.created_at.timestamp())
        provider_done = upstream.created_at + upstream.render_seconds
        if job.pk in seen_done:
            shown.append(seen_done[job.pk] - provider_done)
            delay = seen_done[job.pk] - provider_done
            late.append((round(delay, 1), round(provider_done - started)))
        if job.assets_fetched_at:
            files.append(job.assets_fetched_at.timestamp() - provider_done)
    result = {
        "mode": mode,
        "label": MODES[mode],
        "rpm": args.rpm,
        "jobs": args.jobs,
        "finished": finished,
        "completed": len(completed),
        "failed": sum(job.status == Status.FAILED for job in jobs),
        "failed with": dict(
            Counter(job.error_code or "?" for job in jobs if job.status == Status.FAILED)
        ),
        "429s": len(sim.refusals),
        "most in 60 s": sim.most_requests_in_window(),
        "kinds": dict(sim.kinds),
        "requests": sum(sim.kinds.values()),
        "wall": (max(saved) if finished and saved else time.time()) - started,
        "floor": floor,
        "shown median": statistics.median(shown) if shown else 0.0,
        "shown p95": percentile(shown, 0.95),
        "files median": statistics.median(files) if files else 0.0,
        "files p95": percentile(files, 0.95),
        "waits": {name: sorted(values) for name, values in sorted(waits.items())},
        # The latest shown: (seconds late, when the provider finished from the start).
        "latest shown": sorted(late, reverse=True)[:12],
        "log": str(log_path),
    }
    if args.trace:
        write_trace(Path(args.trace), sim, jobs, seen_done, started, started_clock)
    sim.stop()
    out.write_text(json.dumps(result))
    if finished:
        shutil.rmtree(data, ignore_errors=True)  # kept, with the worker's log, when not


def write_trace(path: Path, sim, jobs, seen_done, started: float, started_clock: float) -> None:
    """Every request the simulator admitted and every job's times, in seconds from the start:
    to see why a job was shown late."""
    with sim._limits_lock:
        requests = [(round(at - started_clock, 2), route) for at, route in sim.request_log]
    timeline = []
    for job in jobs:
        upstream = sim._jobs.get(job.upstream_id) if job.upstream_id else None
        if upstream is None:
            continue
        timeline.append(
            {
                "job": job.pk,
                "sent": round(upstream.created_at - started, 2),
                "done": round(upstream.created_at + upstream.render_seconds - started, 2),
                "shown": round(seen_done[job.pk] - started, 2) if job.pk in seen_done else None,
            }
        )
    path.write_text(json.dumps({"requests": requests, "jobs": timeline}))


KIND_ORDER = [
    "create",
    "poll",
    "download video",
    "download thumbnail",
    "download spritesheet",
    "list",
    "delete",
    "remix",
]


def table(results: list[dict]) -> str:
    """Both modes side by side, with (a) / (b) ratios."""
    a, b = results
    per_job = [r["completed"] or 1 for r in results]

    def row(name: str, values: list[float], fmt: str, ratio: bool = True) -> str:
        cells = "".join(f"{format(v, fmt):>16}" for v in values)
        share = ""
        if ratio and values[1]:
            share = f"{values[0] / values[1]:>9.2f}x"
        elif ratio:
            share = f"{'-':>10}"
        return f"{name:<34}{cells}{share}"

    lines = [
        f"{a['jobs']} jobs from the members, simulator limited to {a['rpm']} requests per minute",
        f"{'':<34}{'(a) budget':>16}{'(b) baseline':>16}{'(a)/(b)':>10}",
        row("jobs completed", [r["completed"] for r in results], "d", False),
        row("jobs failed", [r["failed"] for r in results], "d", False),
        row("429s received", [r["429s"] for r in results], "d"),
        row("most requests in a 60 s window", [r["most in 60 s"] for r in results], "d"),
        row(
            "upstream requests per job",
            [r["requests"] / n for r, n in zip(results, per_job, strict=True)],
            ".2f",
        ),
    ]
    kinds = [k for k in KIND_ORDER if any(r["kinds"].get(k) for r in results)]
    kinds += sorted({k for r in results for k in r["kinds"]} - set(kinds))
    for kind in kinds:
        values = [r["kinds"].get(kind, 0) / n for r, n in zip(results, per_job, strict=True)]
        lines.append(row(f"  {kind}", values, ".2f"))
    lines += [
        row("wall time, min", [r["wall"] / 60 for r in results], ".1f"),
        row("  against the floor", [r["wall"] / r["floor"] for r in results], ".2f"),
        row("shown completed after, median s", [r["shown median"] for r in results], ".1f"),
        row("shown completed after, p95 s", [r["shown p95"] for r in results], ".1f"),
        row("files saved after, median s", [r["files median"] for r in results], ".1f"),
        row("files saved after, p95 s", [r["files p95"] for r in results], ".1f"),
        "wait from submitting to the create reaching the provider, per member (median / max s):",
    ]
    for name in a["waits"]:
        cells = []
        for r in results:
            values = r["waits"].get(name, [])
            text = f"{statistics.median(values):.0f} / {max(values):.0f}" if values else "-"
            cells.append(f"{text:>16}")
        count = len(a["waits"][name])
        label = f"  {name} ({count} jobs)"
        lines.append(f"{label:<34}{''.join(cells)}")
    for r in results:
        if r["failed with"]:
            reasons = ", ".join(f"{code} x{n}" for code, n in sorted(r["failed with"].items()))
            lines.append(f"{r['label']}: failed with {reasons}")
        if not r["finished"]:
            lines.append(f"{r['label']}: gave up with jobs unfinished (worker log {r['log']})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs in each run (default 200)")
    parser.add_argument("--members", type=int, default=10, help="members submitting (default 10)")
    parser.add_argument(
        "--rpm",
        default="25,60",
        help="the simulator's requests per minute, one pair of runs each (default 25,60)",
    )
    parser.add_argument(
        "--render-seconds", type=float, default=60.0, help="simulated render time (default 60)"
    )
    parser.add_argument(
        "--give-up-after", type=float, default=0.0, help="seconds (default: 3 x floor + more)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="jobs rendering at once, for the simulator and MUXWEB_PROVIDER_CONCURRENCY in both "
        "runs: jobs beyond it wait in muxweb in fair order (default 0: no limit)",
    )
    parser.add_argument(
        "--learn-limit",
        action="store_true",
        help="leave MUXWEB_PROVIDER_RPM unset in (a): the budget learns the limit from the headers",
    )
    parser.add_argument(
        "--modes",
        default="on,off",
        help="which runs: on (a), off (b), or both (default on,off; the table needs both)",
    )
    parser.add_argument(
        "--trace", default="", help="write every request and job's times to this JSON file"
    )
    parser.add_argument("--run", choices=sorted(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        args.rpm = int(args.rpm)
        run_one(args.run, args, Path(args.out))
        return
    now = datetime.now(tz=UTC)
    print(
        f"budget benchmark, {now:%Y-%m-%d %H:%M} UTC: {args.jobs} jobs from {args.members} "
        f"members, renders of {args.render_seconds:g} s"
    )
    modes = [mode for mode in MODES if mode in args.modes.split(",")]
    for rpm in [int(text) for text in args.rpm.split(",")]:
        outs = {mode: Path(tempfile.mkstemp(suffix=f"-{mode}.json")[1]) for mode in modes}
        # Both modes at once: each has its own simulator, database and worker.
        children = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--run",
                    mode,
                    "--out",
                    str(outs[mode]),
                    "--rpm",
                    str(rpm),
                    "--jobs",
                    str(args.jobs),
                    "--members",
                    str(args.members),
                    "--render-seconds",
                    str(args.render_seconds),
                    "--give-up-after",
                    str(args.give_up_after),
                    "--concurrency",
                    str(args.concurrency),
                    *(["--learn-limit"] if args.learn_limit else []),
                    *(["--trace", f"{args.trace}.{rpm}.{mode}"] if args.trace else []),
                ],
                cwd=ROOT,
            )
            for mode in modes
        ]
        if any([child.wait() for child in children]):
            raise SystemExit("a run failed; see above")
        print()
        results = [json.loads(outs[mode].read_text()) for mode in modes]
        print(table(results) if len(results) == 2 else json.dumps(results[0], indent=1))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
