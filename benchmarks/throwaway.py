"""A throwaway muxweb for the in-process benchmarks: its own data directory and, with a
PostgreSQL URL, its own database (which must not exist yet), migrated, with settings for Django's
test client; and its removal afterwards.

    with throwaway_database(options.database_url):
        run(options)
"""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@contextlib.contextmanager
def throwaway_database(database_url: str | None) -> Iterator[str]:
    """Set Django up on a fresh data directory (yielded) and database; remove both after."""
    data = tempfile.mkdtemp(prefix="muxweb-bench-")
    name = urlsplit(database_url).path.lstrip("/") if database_url else ""
    os.environ["MUXWEB_DATA_DIR"] = data
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muxweb.settings")
    if database_url:
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
        os.environ["DATABASE_URL"] = database_url
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        settings.ALLOWED_HOSTS = ["*"]
        settings.SECURE_SSL_REDIRECT = False
        # No collectstatic here: plain storage, files found where they are.
        settings.STORAGES = {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
        yield data
    finally:
        from django.db import connections

        connections.close_all()
        # A million jobs take some 600 MB of SQLite.
        shutil.rmtree(data, ignore_errors=True)
        if database_url:
            subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", name], check=False)
