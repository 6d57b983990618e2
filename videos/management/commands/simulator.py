"""`manage.py simulator`: run the built-in fake `/v1/videos` provider in the foreground.

It serves until Ctrl-C (or SIGTERM, which is how `manage.py up` stops its children), then removes
the temporary files it made. Host, port, key, render time, webhooks, faults and the variants it
offers default to the muxweb settings.
"""

import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from videos.upstream.simulator import VARIANTS, Simulator, parse_faults, parse_variants


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the built-in fake video provider until Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
        parser.add_argument(
            "--port",
            type=int,
            default=int(getattr(settings, "MUXWEB_SIMULATOR_PORT", 8765)),
            help="Port to listen on (0: any free port).",
        )
        parser.add_argument(
            "--api-key",
            default=getattr(settings, "MUXWEB_API_KEY", "") or "muxweb-simulator",
            help="The Bearer key clients must send.",
        )
        parser.add_argument(
            "--render-seconds",
            type=float,
            default=float(getattr(settings, "MUXWEB_SIMULATOR_RENDER_SECONDS", 20.0)),
            help="How long a video takes from creation to completion.",
        )
        parser.add_argument(
            "--dialect",
            choices=("openai", "relay"),
            default="openai",
            help="relay reports 'processing' instead of 'in_progress'.",
        )
        parser.add_argument(
            "--fail-marker",
            default="[fail]",
            help="Prompts containing this text (any case) fail with moderation_blocked.",
        )
        parser.add_argument(
            "--poll-after-ms",
            type=int,
            default=2000,
            help="The openai-poll-after-ms header sent while a job runs.",
        )
        parser.add_argument(
            "--expires-after",
            type=int,
            default=3600,
            help="Seconds after completion until downloads answer 404.",
        )
        parser.add_argument(
            "--webhook-url",
            default=getattr(settings, "MUXWEB_SIMULATOR_WEBHOOK_URL", "") or None,
            help="Where to POST a signed event when a video completes or fails (default: none).",
        )
        # The first of the receiver's secrets: while they rotate, it accepts any of them.
        secrets = getattr(settings, "MUXWEB_WEBHOOK_SECRET", "").split()
        parser.add_argument(
            "--webhook-secret",
            default=secrets[0] if secrets else None,
            help="Standard Webhooks signing secret, whsec_<base64> (default: from settings).",
        )

        parser.add_argument(
            "--faults",
            default=getattr(settings, "MUXWEB_SIMULATOR_FAULTS", ""),
            help='Faults to inject, e.g. "create:hang:seconds=20;retrieve:503:times=3" '
            "(default: MUXWEB_SIMULATOR_FAULTS).",
        )
        parser.add_argument(
            "--variants",
            default=getattr(settings, "MUXWEB_SIMULATOR_VARIANTS", ",".join(VARIANTS)),
            help='Content variants served, comma-separated; "video" plays a gateway that refuses '
            "thumbnails and spritesheets (default: MUXWEB_SIMULATOR_VARIANTS).",
        )

        parser.add_argument(
            "--rpm",
            type=int,
            default=int(getattr(settings, "MUXWEB_SIMULATOR_RPM", 0)),
            help="Requests per minute before answering 429, like a real key (0: no limit; "
            "default: MUXWEB_SIMULATOR_RPM).",
        )
        parser.add_argument(
            "--concurrency",
            type=int,
            default=int(getattr(settings, "MUXWEB_SIMULATOR_CONCURRENCY", 0)),
            help="Jobs rendering at once before a create gets 429 (0: no limit; "
            "default: MUXWEB_SIMULATOR_CONCURRENCY).",
        )
        parser.add_argument(
            "--list-refused-with",
            type=int,
            choices=(0, 404, 405),
            default=0,
            help="Answer GET /videos with this status, as a provider without the list does "
            "(0: the list works).",
        )

    def handle(
        self,
        *args,
        host: str,
        port: int,
        api_key: str,
        render_seconds: float,
        dialect: str,
        fail_marker: str,
        poll_after_ms: int,
        expires_after: int,
        webhook_url: str | None,
        webhook_secret: str | None,
        faults: str,
        variants: str,
        rpm: int,
        concurrency: int,
        list_refused_with: int,
        verbosity: int,
        **options,
    ) -> None:
        try:
            simulator = Simulator(
                host=host,
                port=port,
                api_key=api_key,
                render_seconds=render_seconds,
                fail_marker=fail_marker,
                poll_after_ms=poll_after_ms,
                expires_after=expires_after,
                dialect=dialect,
                verbose=verbosity >= 2,
                webhook_url=webhook_url,
                webhook_secret=webhook_secret,
                faults=parse_faults(faults),
                offered_variants=parse_variants(variants),
                rpm_limit=rpm,
                concurrency_limit=concurrency,
                list_refused_with=list_refused_with,
            )
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        signal.signal(signal.SIGTERM, _interrupt)
        # Neither the key nor the webhook secret is printed: from settings, they may be real ones.
        webhooks = f", webhooks to {webhook_url}" if webhook_url else ""
        if faults:
            webhooks += f", injecting faults: {faults}"
        if rpm or concurrency:
            webhooks += f", limited to {rpm or 'any number of'} requests a minute and "
            webhooks += f"{concurrency or 'any number of'} jobs at once"
        if set(simulator.offered_variants) != set(VARIANTS):
            webhooks += f", offering only {', '.join(simulator.offered_variants)}"
        self.stdout.write(
            f"Simulator serving {simulator.base_url} "
            f"(render {render_seconds:g}s, {dialect} dialect{webhooks}); Ctrl-C stops it."
        )
        self.stdout.flush()
        try:
            simulator.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            # A second signal must not cut the stop short and leave files behind.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            simulator.stop()
        self.stdout.write("Simulator stopped.")
