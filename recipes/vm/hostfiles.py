"""Files on the host: read with their owner, group and mode, compared with what a step wants (a diff with every
secret masked), and written atomically as root."""

from __future__ import annotations

import base64
import posixpath
import re
import shlex
from dataclasses import dataclass

from recipes.lazy import lazy
from recipes.vm.reads import Answer, Read
from recipes.vm.session import heredoc

difflib = lazy("difflib")

MASK = "********"
# Keys whose values never appear in output or diffs.
SECRET_KEY_RE = re.compile(r"^(\s*-?\s*(?:api_key|app_key|password)\s*:\s*).*$", re.IGNORECASE)


@dataclass
class FileState:
    path: str
    exists: bool = False
    content: str = ""
    owner: str = ""
    group: str = ""
    mode: str = ""


def file_probe(path: str) -> str:
    """The command printing ``owner group mode`` on the first line, then the file's content."""
    quoted = shlex.quote(path)
    return f"stat -c '%U %G %a' {quoted} && cat {quoted}"


def parse_file_probe(path: str, result: tuple[int, str]) -> FileState:
    code, output = result
    if code != 0:
        return FileState(path)
    meta, _, content = output.partition("\n")
    owner, group, mode = meta.split()
    return FileState(path, True, content, owner, group, mode.rjust(4, "0"))


@dataclass(frozen=True)
class FileRead(Read[FileState]):
    """A file's content, owner, group and mode, as a FileState (``exists`` False when it is not there)."""

    path: str = ""

    def parse(self, answer: Answer) -> FileState:
        return parse_file_probe(self.path, answer)


def file_read(path: str) -> FileRead:
    return FileRead(file_probe(path), path=path)


def mask_secrets(text: str) -> str:
    """Replace the value of every api_key/password line with a mask."""
    return "\n".join(SECRET_KEY_RE.sub(lambda m: m.group(1) + MASK, line) for line in text.split("\n"))


def unified_diff(path: str, old: str, new: str) -> str:
    """A unified diff of a file's content, secrets masked on both sides."""
    lines = difflib.unified_diff(
        mask_secrets(old).splitlines(keepends=True),
        mask_secrets(new).splitlines(keepends=True),
        fromfile=f"{path} (on host)",
        tofile=f"{path} (to write)",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def write_atomically(path: str, content: str, owner: str, group: str, mode: str) -> str:
    """A root script that stages the file beside its target (0600 until complete), then renames it into place.

    The bytes travel inside the script (base64 in a here-document, on stdin): no copy is ever left where the
    SSH user could read it, and a run cut at any point leaves the old file or the new one.
    """
    q = shlex.quote
    staged = f"{path}.runbook-new"
    target_dir = posixpath.dirname(path)
    encoded = base64.encodebytes(content.encode()).decode()
    return (f"set -e\n[ -d {q(target_dir)} ] || install -d -o {owner} -g {group} -m 0755 {q(target_dir)}\n"
            f"(umask 077 && base64 -d > {q(staged)}) {heredoc(encoded)}\n"
            f"chown {owner}:{group} {q(staged)} && chmod {mode} {q(staged)}\n"
            f"mv -f {q(staged)} {q(path)}\n")
