# bash completion for ovios-shell one-shot runs (cron lines, scripts, a login shell):
#   ovios-shell retadm inc <TAB>  -> replicated datasets
#   ovios-shell retadm init <TAB> -> local filesystems and volumes
#   ovios-shell options <TAB>     -> option names, then on/off

_ovios_shell_words() {
    # $1: what to list
    case "$1" in
        verbs)      echo "retadm options edit-cron help quit" ;;
        retadm)     echo "status init inc" ;;
        options)    ovios-shell options 2>/dev/null | awk 'NR > 2 { print $1 }' ;;
        replicated) ovios-shell retadm status --json 2>/dev/null \
                        | sed -n 's/^ *"dataset": "\(.*\)",$/\1/p' ;;
        local)      PATH="$PATH:/usr/sbin:/sbin" timeout 5 zfs list -H -o name -t filesystem,volume 2>/dev/null \
                        | grep / ;;
    esac
}

_ovios_shell() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local verb=${COMP_WORDS[1]} sub=${COMP_WORDS[2]}
    local words=""
    if [ "$COMP_CWORD" -eq 1 ]; then
        words=$(_ovios_shell_words verbs)
    elif [ "$verb" = retadm ] && [ "$COMP_CWORD" -eq 2 ]; then
        words=$(_ovios_shell_words retadm)
    elif [ "$verb" = retadm ] && [ "$COMP_CWORD" -eq 3 ]; then
        case "$sub" in
            init)       words=$(_ovios_shell_words local) ;;
            inc|status) words=$(_ovios_shell_words replicated) ;;
        esac
        case "$cur" in -*) words="--dry-run --help" ;; esac
    elif [ "$verb" = options ] && [ "$COMP_CWORD" -eq 2 ]; then
        words=$(_ovios_shell_words options)
    elif [ "$verb" = options ] && [ "$COMP_CWORD" -eq 3 ]; then
        words="on off"
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}

complete -F _ovios_shell ovios-shell /usr/bin/ovios-shell
