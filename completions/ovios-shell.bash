# bash completion for ovios-shell one-shot runs (cron lines, scripts, a login shell):
#   ovios-shell retadm inc <TAB>   -> replicated datasets
#   ovios-shell retadm init <TAB>  -> local filesystems and volumes not replicated yet (no pools)
#   ovios-shell retadm promote <TAB> (and reverse) -> the same local datasets (replicas have no task here)
#   ovios-shell retadm inc -<TAB>  -> the subcommand's options, at any position after it
#   ovios-shell options <TAB>      -> option names, then on/off
#   ovios-shell restore <TAB>      -> all luns shares exports users, then --from --dry-run

_ovios_shell_words() {
    # $1: what to list
    case "$1" in
        verbs)      echo "retadm restore options edit-cron help quit" ;;
        restore)    echo "all luns shares exports users" ;;
        synced)     ls "${OVIOS_ROOT%/}/etc/ovios/synced" 2>/dev/null | sed -n 's/\.json$//p' ;;
        retadm)     echo "status init inc reset doctor repair watch promote reverse switchback" ;;
        options)    ovios-shell options 2>/dev/null | awk 'NR > 2 { print $1 }' ;;
        replicated) ovios-shell retadm status --json 2>/dev/null \
                        | sed -n 's/^ *"dataset": "\(.*\)",$/\1/p' ;;
        local)      PATH="$PATH:/usr/sbin:/sbin" timeout 5 zfs list -H -o name -t filesystem,volume 2>/dev/null \
                        | grep / | grep -vxF -f <(_ovios_shell_words replicated) ;;
    esac
}

# the options of a retadm subcommand
_ovios_shell_retadm_options() {
    case "$1" in
        init)   echo "--dest --remote-pool --remote-name --properties --decrypted --dry-run --help" ;;
        inc|watch)    echo "--dest --dry-run --help" ;;
        reset|repair) echo "--dest --dry-run --yes --help" ;;
        switchback)   echo "--dry-run --yes --help" ;;
        promote)      echo "--key-file --dry-run --help" ;;
        reverse)      echo "--properties --dry-run --yes --help" ;;
        doctor)       echo "--dest --json --dry-run --help" ;;
        status)       echo "--json --help" ;;
    esac
}

_ovios_shell() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local verb=${COMP_WORDS[1]} sub=${COMP_WORDS[2]}
    local words="" i positional=""
    if [ "$COMP_CWORD" -eq 1 ]; then
        words=$(_ovios_shell_words verbs)
    elif [ "$verb" = retadm ] && [ "$COMP_CWORD" -eq 2 ]; then
        words=$(_ovios_shell_words retadm)
    elif [ "$verb" = retadm ] && [ "$COMP_CWORD" -ge 3 ]; then
        case "$cur" in
            -*) words=$(_ovios_shell_retadm_options "$sub") ;;
            *)
                case "$sub:$prev" in
                    init:--properties|reverse:--properties) words="yes no" ;;
                    *:--dest|init:--remote-pool|init:--remote-name) ;;  # free text
                    promote:--key-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;  # a file
                    *)
                        # the dataset, unless one was given already
                        for ((i = 3; i < COMP_CWORD; i++)); do
                            case "${COMP_WORDS[i]}" in
                                --dest|--remote-pool|--remote-name|--properties|--key-file) ((i++)) ;;
                                -*) ;;
                                *) positional=${COMP_WORDS[i]} ;;
                            esac
                        done
                        if [ -z "$positional" ]; then
                            case "$sub" in
                                init|promote|reverse) words=$(_ovios_shell_words local) ;;
                                *)          words=$(_ovios_shell_words replicated) ;;
                            esac
                        fi
                        ;;
                esac
                ;;
        esac
    elif [ "$verb" = restore ] && [ "$COMP_CWORD" -eq 2 ]; then
        words=$(_ovios_shell_words restore)
    elif [ "$verb" = restore ] && [ "$prev" = --from ]; then
        words=$(_ovios_shell_words synced)
    elif [ "$verb" = restore ]; then
        words="--from --dry-run --help"
    elif [ "$verb" = options ] && [ "$COMP_CWORD" -eq 2 ]; then
        words=$(_ovios_shell_words options)
    elif [ "$verb" = options ] && [ "$COMP_CWORD" -eq 3 ]; then
        words="on off"
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}

complete -F _ovios_shell ovios-shell /usr/bin/ovios-shell
