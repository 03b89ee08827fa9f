"""Unix users for the configuration's SMB users: same name, same uid as on the partner (the
replicated files belong to that uid), no home, no login shell.  An existing user is never
changed: a different uid, or the uid taken by someone else, is refused by the planner."""

from __future__ import annotations

from .common import ApplyError, moved, os_path, run
from .planner import Action


def observe() -> dict[str, int]:
    """name -> uid, from /etc/passwd."""
    users: dict[str, int] = {}
    try:
        text = os_path("/etc/passwd").read_text(errors="replace")
    except FileNotFoundError:
        return users
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            users.setdefault(fields[0], int(fields[2]))
    return users


def apply(action: Action) -> None:
    a = action.args
    if action.kind != "add_user":  # pragma: no cover
        raise ApplyError(f"unknown user action {action.kind}")
    prefix = ["--prefix", str(os_path("/"))] if moved() else []
    run(["useradd", *prefix, "--uid", str(a["uid"]), "--no-create-home", "--shell", "/usr/sbin/nologin",
         "--comment", "OviOS SMB user", a["name"]], action.description)
