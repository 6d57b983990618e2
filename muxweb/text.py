"""Text as muxweb keeps it: line breaks made plain, no invisible control characters; and text as
it goes into a spreadsheet, never run as a formula."""

import re
from datetime import date

# Line breaks as browsers and editors send them (CRLF, CR, and the vertical tab and form feed
# that word processors use for soft breaks) become a plain newline.
_LINE_BREAKS = re.compile(r"\r\n?|[\v\f]")
# Every other control character but the tab (C0, DEL, C1): invisible on the page, meaningless to
# the provider, and NUL cannot even be stored in PostgreSQL.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def without_control_characters(text: str) -> str:
    """The text with plain newlines for its line breaks and no other control character but tab."""
    return _CONTROL_CHARACTERS.sub("", _LINE_BREAKS.sub("\n", text))


# A spreadsheet takes a cell starting with one of these for a formula, so a prompt like
# "=HYPERLINK(...)" could run on the accountant's machine. (A carriage return is a newline by the
# time this is checked.)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\n")


def spreadsheet_cell(value: object) -> str:
    """The value as inert text: no control characters, never read as a formula."""
    text = without_control_characters("" if value is None else str(value))
    return "'" + text if text.startswith(FORMULA_STARTS) else text


# The largest id a bigint column holds: a larger number names no row, and SQLite cannot even
# compare a column with it.
MAX_ID = 2**63 - 1


def parse_id(value: str) -> int | None:
    """The id written in `value` (plain ASCII digits, no sign), or None if it names no row.

    str.isdigit() alone is not enough: it accepts "²" and "٣", which int() refuses or reads."""
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(MAX_ID)):
        return None
    number = int(value)
    return number if 0 < number <= MAX_ID else None


class IdConverter:
    """A row's id in a URL path, in its canonical decimal only: any other spelling of a number
    (leading zeros, more digits than a database id holds) is a 404 before a view runs."""

    regex = "[1-9][0-9]{0,18}"

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValueError(value)  # the URL does not match: 404
        return number

    def to_url(self, value: int) -> str:
        return str(value)


# The days a date filter may name: every day a person means, far enough from the calendar's ends
# that its midnight in any time zone, and the day after, are still dates.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(9998, 12, 31)


def parse_day(value: str) -> date | None:
    """The day written in `value` as YYYY-MM-DD (what <input type="date"> sends), or None."""
    if not (value.isascii() and len(value) == 10):
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY else None


class CsvLines:
    """Where csv.writer writes: each row comes back as the string it would have written, so a
    response can stream rows as they are made."""

    def write(self, line: str) -> str:
        return line
