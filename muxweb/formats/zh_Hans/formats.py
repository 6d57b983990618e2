"""Django's Simplified Chinese formats, with digits grouped by three as CLDR writes them
(US$1,234.50; Django's own file groups nothing)."""

from django.conf.locale.zh_Hans.formats import *  # noqa: F403

THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
