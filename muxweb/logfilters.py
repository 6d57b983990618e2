"""Logging filters the settings attach to the console handler.

Imported while logging is configured, before the apps are ready: nothing here may import models.
"""

import logging
import re

# A share link's path carries its token, which is the link itself: /s/<token>/...
SHARE_PATH = re.compile(r"/s/[^/\s?#\"']+")
MASKED = "/s/…"


class MaskShareTokens(logging.Filter):
    """Stars out the token of every share-link path in a message (Django's "Not Found: /s/...",
    runserver's request lines), so that whoever reads the logs cannot open the link."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: logging reports it itself
            return True
        if "/s/" in message:
            masked = SHARE_PATH.sub(MASKED, message)
            if masked != message:
                record.msg, record.args = masked, ()
        return True
