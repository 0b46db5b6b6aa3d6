"""Reading a results tree (or a data directory) without ever following a link.

A symbolic link inside a results directory can make a file elsewhere (``/etc/passwd``,
another run's metrics) look like part of the results, with a manifest entry that hashes
right. The audit therefore lists a tree with ``lstat`` alone (:func:`scan`: links are
named, never entered) and reads a file only through :func:`open_file`, which refuses a
path when any part of it below the tree's root is a link or the file is not a regular
file (a FIFO would block the audit). The root itself is the caller's choice and may be a
link.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

_CHUNK = 1 << 20


class Refused(OSError):
    """A path the audit will not read: a link (or something other than a regular file)
    on the way, or a path leading out of the tree."""


@dataclass
class Listing:
    """Everything under ``root``, by path relative to it (POSIX), found without
    following links."""

    root: Path
    files: set[str] = field(default_factory=set)
    dirs: set[str] = field(default_factory=set)
    links: dict[str, str] = field(default_factory=dict)   # path -> where it points
    others: dict[str, str] = field(default_factory=dict)  # path -> what it is

    def refusals(self, skip: tuple[str, ...] = ()) -> list[str]:
        """One line per link or special file, except those under a path in ``skip``."""
        out = [f"{rel}: symbolic link to {target}, not followed (links are refused)"
               for rel, target in sorted(self.links.items()) if not _under(rel, skip)]
        out += [f"{rel}: {what}, not read" for rel, what in sorted(self.others.items())
                if not _under(rel, skip)]
        return sorted(out)

    def grouped(self, depth: int) -> dict[str, "Listing"]:
        """The entries under each directory ``depth`` levels down (a run directory:
        ``runs/{dataset}/{optimiser}/{arch}/{run}``), relative to it; one pass."""
        out: dict[str, Listing] = {}
        for kind in ("files", "links", "others"):
            for rel in getattr(self, kind):
                parts = rel.split("/")
                if len(parts) <= depth:
                    continue
                top = "/".join(parts[:depth])
                group = out.setdefault(top, Listing(self.root / top))
                inner = "/".join(parts[depth:])
                if kind == "files":
                    group.files.add(inner)
                else:
                    getattr(group, kind)[inner] = getattr(self, kind)[rel]
        return out


def _under(rel: str, prefixes: tuple[str, ...]) -> bool:
    return any(rel == p or rel.startswith(p.rstrip("/") + "/") for p in prefixes)


def scan(root: Path) -> Listing:
    """List ``root`` recursively with ``lstat`` only: a link is recorded, not entered."""
    listing = Listing(Path(root))
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        try:
            entries = list(os.scandir(listing.root / rel_dir))
        except OSError as error:
            listing.others[rel_dir or "."] = f"unreadable directory ({error.strerror})"
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.is_symlink():
                listing.links[rel] = _target(entry.path)
            elif entry.is_dir(follow_symlinks=False):
                listing.dirs.add(rel)
                pending.append(rel)
            elif entry.is_file(follow_symlinks=False):
                listing.files.add(rel)
            else:
                listing.others[rel] = "not a regular file or directory"
    return listing


def _target(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def check(root: Path, path: Path, want_dir: bool = False) -> None:
    """Raise :class:`Refused` unless every part of ``path`` below ``root`` is a real
    directory (not a link) and ``path`` itself a regular file (a directory when
    ``want_dir``); FileNotFoundError when something on the way is missing."""
    root, path = Path(root), Path(path)
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        raise Refused(f"{path} is outside {root}") from None
    if ".." in parts:
        raise Refused(f"{path} leads out of {root} ('..')")
    here, mode = root, os.stat(root).st_mode
    for depth, part in enumerate(parts, start=1):
        here = here / part
        mode = os.lstat(here).st_mode
        if stat.S_ISLNK(mode):
            shown = "/".join(parts[:depth])
            where = "" if depth == len(parts) else f" ({shown} on its way)"
            raise Refused(f"symbolic link{where} to {_target(str(here))}, not followed "
                          "(links are refused)")
        if depth < len(parts) and not stat.S_ISDIR(mode):
            raise FileNotFoundError(f"{here} is not a directory")
    if want_dir and not stat.S_ISDIR(mode):
        raise Refused("not a directory")
    if not want_dir and not stat.S_ISREG(mode):
        raise Refused("not a regular file, not read")


def is_file(root: Path, path: Path) -> bool:
    """A regular file reached without a link (False for a link or anything missing)."""
    try:
        check(root, path)
    except OSError:
        return False
    return True


def is_dir(root: Path, path: Path) -> bool:
    try:
        check(root, path, want_dir=True)
    except OSError:
        return False
    return True


def open_file(root: Path, path: Path) -> BinaryIO:
    """``path`` opened for reading after :func:`check`; O_NOFOLLOW refuses a link put
    there in between."""
    check(root, path)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    return os.fdopen(os.open(path, flags), "rb")


def read_bytes(root: Path, path: Path) -> bytes:
    with open_file(root, path) as handle:
        return handle.read()


def read_json(root: Path, path: Path) -> Any:
    return json.loads(read_bytes(root, path).decode("utf-8"))


def sha256(root: Path, path: Path) -> str:
    digest = hashlib.sha256()
    with open_file(root, path) as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()
