"""`manage.py import_videos`: bring in jobs started elsewhere with the same provider key."""

from django.core.management.base import BaseCommand, CommandError

from videos import services
from videos.upstream.client import UpstreamError


class Command(BaseCommand):
    help = "Add the provider's jobs that muxweb does not know yet, and save their files."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--max-pages", type=int, default=100, help="Pages of 100 jobs at most.")

    def handle(self, *args, max_pages: int, **options) -> None:
        try:
            added = services.import_upstream_jobs(max_pages=max_pages)
        except UpstreamError as exc:
            raise CommandError(f"The provider refused the listing: {exc}") from None
        self.stdout.write(f"Imported {added} job(s).")
