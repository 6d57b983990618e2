"""The data directory's permissions: what muxweb writes there is readable by muxweb alone.

It holds the SQLite database (session keys in clear), the secret key and every cached file. The
process umask is 077, the directory 0700 and every file 0600, whatever the umask muxweb was started
with; installs made before are tightened at start. With MUXWEB_MEDIA_GROUP (the web server's group,
for nginx sending media itself) the media folder and its files are readable by that group too, and
the data directory only lets that group through to it (0710); the database and secret stay 0600.
"""

import grp
import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
SHARED_FILE = 0o640
# setgid: files and folders made inside take the folder's group.
SHARED_DIR = 0o2750
PASSAGE_DIR = 0o710


def media_group_id(name: str) -> int | None:
    """The group id named by MUXWEB_MEDIA_GROUP (a name or a number), None when unset."""
    if not name:
        return None
    if name.isdigit():
        return int(name)
    return grp.getgrnam(name).gr_gid


def tighten_top(data_dir: Path, group: int | None) -> None:
    """The data directory and the files right inside it (database, secret key): cheap, so done
    by every process as it starts."""
    _set(data_dir, PASSAGE_DIR if group is not None else PRIVATE_DIR, group)
    for path in data_dir.iterdir():
        if path.is_file() and not path.is_symlink():
            _set(path, PRIVATE_FILE, None)


def tighten_media(media_root: Path, group: int | None) -> int:
    """Every folder and file under the media root; returns how many were changed."""
    if not media_root.is_dir():
        return 0
    dir_mode, file_mode = (
        (SHARED_DIR, SHARED_FILE) if group is not None else (PRIVATE_DIR, PRIVATE_FILE)
    )
    changed = _set(media_root, dir_mode, group)
    for root, dirs, files in os.walk(media_root):
        for name in dirs:
            changed += _set(Path(root, name), dir_mode, group)
        for name in files:
            changed += _set(Path(root, name), file_mode, group)
    return changed


def make_media_dir(path: Path, media_root: Path, group: int | None) -> None:
    """`path` (under the media root) and its missing parents, with the media folders' mode."""
    missing = []
    current = path
    while not current.exists() and current != media_root.parent:
        missing.append(current)
        current = current.parent
    path.mkdir(parents=True, exist_ok=True)
    mode = SHARED_DIR if group is not None else PRIVATE_DIR
    for folder in missing:
        _set(folder, mode, group)


def publish_media_file(path: Path, group: int | None) -> None:
    """A media file just written: private, or readable by the media group."""
    _set(path, SHARED_FILE if group is not None else PRIVATE_FILE, group)


def _set(path: Path, mode: int, group: int | None) -> int:
    """Give `path` this mode (and group); 1 if anything changed. Symlinks are left alone."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return 0
    changed = 0
    if group is not None and info.st_gid != group:
        os.chown(path, -1, group)
        changed = 1
    if stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)
        changed = 1
    return changed
