"""Arguments that would do harm if anything ran them through a shell or read them as options:
every command runner must pass them on verbatim."""

HOSTILE_ARGS = [
    "a b  c",
    "it's \"quoted\"",
    "$(touch {marker})",
    "`touch {marker}`",
    "; touch {marker}",
    "| touch {marker}",
    "&& touch {marker} &",
    "line1\nline2",
    "$HOME ${{PATH}} \\ * ? [x] ~ #",
    "-n",
    "",
]
