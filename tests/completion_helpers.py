"""Running ``completions/ovios-shell.bash`` in a real bash: the script that completes a word
and prints what the completion function offers."""

from __future__ import annotations

import shlex
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "completions" / "ovios-shell.bash"


#: exit statuses of :func:`completion_script` when the completion never ran: an empty
#: COMPREPLY must mean "nothing to offer", never "the script did not load or run"
NOT_REGISTERED, DID_NOT_RUN = 3, 4


def completion_script(words: list[str]) -> str:
    """bash that completes the last of ``words`` and prints COMPREPLY, one per line.

    It fails (:data:`NOT_REGISTERED`, :data:`DID_NOT_RUN`) unless the script registered
    ``_ovios_shell`` for ovios-shell and the function ran to the point where it sets COMPREPLY
    (unset before the call; after it, an empty array is set, a function that never ran leaves
    it unset)."""
    return "\n".join([
        "source /dev/stdin <<'OVIOS_COMPLETION'",
        SCRIPT.read_text().rstrip("\n"),
        "OVIOS_COMPLETION",
        '[ "$(complete -p ovios-shell 2>/dev/null)" = "complete -F _ovios_shell ovios-shell" ] '
        f"|| exit {NOT_REGISTERED}",
        f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})",
        f"COMP_CWORD={len(words) - 1}",
        f"COMP_LINE={shlex.quote(' '.join(words))}",
        "COMP_POINT=${#COMP_LINE}",
        "unset COMPREPLY",
        "_ovios_shell",
        f"declare -p COMPREPLY >/dev/null 2>&1 || exit {DID_NOT_RUN}",
        'printf "%s\\n" "${COMPREPLY[@]}"',
    ])


def parse(stdout: str) -> list[str]:
    return sorted(line for line in stdout.splitlines() if line)
