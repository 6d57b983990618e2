"""System checks: configuration mistakes are reported at start, not at the first request."""

import re

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.compatibility)
def check_provider(app_configs, **kwargs) -> list[checks.CheckMessage]:
    errors = []
    if not settings.MUXWEB_API_BASE.startswith(("http://", "https://")):
        errors.append(
            checks.Error("MUXWEB_API_BASE must be an http(s) URL ending in /v1.", id="muxweb.E001")
        )
    if not settings.MUXWEB_USE_SIMULATOR and not settings.MUXWEB_API_KEY:
        errors.append(
            checks.Error(
                "MUXWEB_API_BASE is set but MUXWEB_API_KEY is not.",
                hint="Set MUXWEB_API_KEY to the provider's key, or unset MUXWEB_API_BASE to use "
                "the built-in simulator.",
                id="muxweb.E002",
            )
        )
    elif not settings.MUXWEB_API_BASE.rstrip("/").endswith("/v1"):
        errors.append(
            checks.Warning(
                "MUXWEB_API_BASE usually ends in /v1 (e.g. https://relay.example/v1).",
                id="muxweb.W001",
            )
        )
    return errors


# Plain segments between slashes, none starting with a dot: it is glued to a quoted file path and
# must name nginx's location as written, so nothing in it may need quoting or resolve to "..".
_ACCEL_PREFIX = re.compile(r"^/(?:[A-Za-z0-9_~-][A-Za-z0-9._~-]*/)+$")


@checks.register(checks.Tags.compatibility)
def check_media_serving(app_configs, **kwargs) -> list[checks.CheckMessage]:
    mode = settings.MUXWEB_MEDIA_SERVING
    if mode not in settings.MEDIA_SERVING_MODES:
        return [
            checks.Error(
                f"MUXWEB_MEDIA_SERVING must be one of {', '.join(settings.MEDIA_SERVING_MODES)}; "
                f"got {mode!r}.",
                id="muxweb.E010",
            )
        ]
    prefix = settings.MUXWEB_MEDIA_ACCEL_PREFIX
    if mode == "nginx" and not _ACCEL_PREFIX.match(prefix):
        return [
            checks.Error(
                f"MUXWEB_MEDIA_ACCEL_PREFIX must be a path starting and ending with '/', "
                f"e.g. /protected-media/; got {prefix!r}.",
                hint="It names nginx's internal location that aliases MEDIA_ROOT "
                "(see docs/nginx.conf).",
                id="muxweb.E011",
            )
        ]
    return []
