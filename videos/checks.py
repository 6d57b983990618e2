"""System checks: configuration mistakes are reported at start, not at the first request."""

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
