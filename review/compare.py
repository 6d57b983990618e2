"""Comparing two to four jobs side by side: which jobs, and each prompt's words against the first's.

The diff is by word, Chinese and Japanese by character (they write no spaces between words), and
keeps the spaces as they were typed.
"""

import difflib
import re

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from videos.models import VideoJob

MIN_JOBS = 2
MAX_JOBS = 4

# A character of a script written without spaces (CJK ideographs, kana, Hangul syllables), a run
# of other non-space characters, or a run of spaces.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u3000-\u303f\uff00-\uffef"
_TOKEN = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+|\s+")


def parse_ids(values: list[str]) -> list[int] | None:
    """The job ids asked for, in order and each once ("1,2" and repeated ids both read); None if
    one is not a number."""
    ids: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isascii() or not part.isdigit() or len(part) > 18:
                return None
            if int(part) not in ids:
                ids.append(int(part))
    return ids


def jobs_in_order(ids: list[int]) -> list[VideoJob]:
    """The kept jobs with these ids, in the order asked (missing and trashed ones left out)."""
    found = {job.pk: job for job in VideoJob.objects.kept().for_cards().filter(pk__in=ids)}
    return [found[pk] for pk in ids if pk in found]


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def prompt_diff(base: str, other: str) -> SafeString:
    """`other` as HTML, its words not in `base` in <ins> and the words of `base` it drops in
    <del>, in place."""
    before, after = tokens(base), tokens(other)
    parts: list[str] = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        removed, added = "".join(before[i1:i2]), "".join(after[j1:j2])
        if op == "equal":
            parts.append(escape(added))
            continue
        # Spaces stay outside the marks, as the new prompt has them (or the old, for a removal).
        spaces = added if added.strip() else removed
        lead = spaces[: len(spaces) - len(spaces.lstrip())]
        trail = spaces[len(spaces.rstrip()) :]
        marked = [
            format_html("<{}>{}</{}>", tag, text.strip(), tag)
            for tag, text in (("del", removed), ("ins", added))
            if text.strip()
        ]
        parts.append(escape(lead) + "".join(marked) + escape(trail))
    return mark_safe("".join(parts))  # noqa: S308 - every part is escaped above
