# shellcheck shell=sh
# ovios-lab: signatures of system files, for the reset baseline (POSIX sh: boot.sh sources
# this file from the seed; reset.sh is sent after it).  A signature covers names, types,
# modes, owners, sizes, modification and change times.  Nothing can write a file without
# changing its ctime, so contents need no hashing; a restored file gets a new ctime, so
# reset records the signatures again after restoring.

path_signature() {  # of the path $1 (relative to /)
    { cd / && find "$1" -printf '%p %y %m %U %G %s %T@ %C@ %l\n'; } 2>/dev/null | sha256sum | cut -d' ' -f1
}

list_signature() {  # over every path (relative to /) listed in the file $1, one a line
    (
        cd / || exit
        set -f
        IFS='
'
        # shellcheck disable=SC2046 # the list is split on newlines only, without globbing
        find $(cat "$1") -printf '%p %y %m %U %G %s %T@ %C@ %l\n'
    ) 2>/dev/null | sha256sum | cut -d' ' -f1
}
