"""The Simplified Chinese catalogue is complete: every entry translated, none fuzzy, none stale.

A string added in English without its translation fails here, in the same commit. The catalogue is
read as gettext writes it (msgid, msgid_plural, msgstr[n] with continuation lines), and checked
against the source with `makemessages` in a copy, so an entry missing from the file fails too.
"""

import re
import shutil
import subprocess
import sys

from tests.conftest import ROOT

CATALOGUE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def entries(po: str) -> list[dict]:
    """Each entry of a .po file: its flags, msgid and every msgstr, continuation lines joined."""
    found = []
    for block in po.split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        entry: dict = {"flags": "", "msgctxt": "", "msgid": None, "msgstr": []}
        current = None
        for line in lines:
            if line.startswith("#,"):
                entry["flags"] += line
            elif line.startswith("#"):
                continue
            elif match := re.match(
                r'(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) "(.*)"$', line
            ):
                current = match[1]
                if current == "msgctxt":
                    entry["msgctxt"] = match[2]
                elif current == "msgid":
                    entry["msgid"] = match[2]
                elif current.startswith("msgstr"):
                    entry["msgstr"].append(match[2])
            elif line.startswith('"') and current:
                if current == "msgid":
                    entry["msgid"] += line[1:-1]
                elif current.startswith("msgstr"):
                    entry["msgstr"][-1] += line[1:-1]
        if entry["msgid"] is not None:
            found.append(entry)
    return found


def test_every_chinese_entry_is_translated_and_none_is_fuzzy():
    problems = [
        entry["msgid"]
        for entry in entries(CATALOGUE.read_text())
        if entry["msgid"]  # the header
        and ("fuzzy" in entry["flags"] or not all(entry["msgstr"]))
    ]
    assert not problems, "translate these in django.po:\n" + "\n".join(problems)


def test_the_catalogue_holds_every_string_of_the_source(tmp_path):
    copy = tmp_path / "muxweb"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(".venv", ".git", "data", "tests", "node_modules", "*.pyc"),
    )
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-obsolete"],
        cwd=copy,
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "MUXWEB_DATA_DIR": str(tmp_path / "data")},
    )
    # Keyed by context too: "Admin" the link and "Admin" the role are two entries.
    fresh = {
        (e["msgctxt"], e["msgid"])
        for e in entries((copy / CATALOGUE.relative_to(ROOT)).read_text())
    }
    kept = {(e["msgctxt"], e["msgid"]) for e in entries(CATALOGUE.read_text())}
    missing = sorted(f"{context}|{msgid}" if context else msgid for context, msgid in fresh - kept)
    assert not missing, "run makemessages and translate:\n" + "\n".join(missing)
    problems = [
        e["msgid"]
        for e in entries((copy / CATALOGUE.relative_to(ROOT)).read_text())
        if e["msgid"] and ("fuzzy" in e["flags"] or not all(e["msgstr"]))
    ]
    assert not problems, "these would need translating after makemessages:\n" + "\n".join(problems)
