# bash completion for ovios-shell one-shot runs (cron lines, scripts, a login shell):
#   ovios-shell retadm inc <TAB>   -> replicated datasets
#   ovios-shell retadm init <TAB>  -> local filesystems and volumes not replicated yet (no pools)
#   ovios-shell retadm promote <TAB>     -> the replicas here not promoted yet (their own origin mark)
#   ovios-shell retadm reverse <TAB>     -> the promoted replicas here
#   ovios-shell retadm switchback <TAB>  -> the promoted replicas here that have a task (from reverse)
#   ovios-shell retadm init --dest <TAB> -> known partners: the tasks', /etc/hosts, known_hosts
#   ovios-shell retadm init --dest D --remote-pool <TAB> -> D's pools (over ssh, a few seconds at most)
#   ovios-shell retadm inc -<TAB>  -> the subcommand's options, at any position after it
#   ovios-shell options <TAB>      -> option names, then their values
#   ovios-shell restore <TAB>      -> all luns shares exports users, then --from --dry-run

_ovios_shell_words() {
    # $1: what to list
    case "$1" in
        verbs)      echo "retadm restore options edit-cron help quit" ;;
        restore)    echo "all luns shares exports users" ;;
        synced)     ls "${OVIOS_ROOT%/}/etc/ovios/synced" 2>/dev/null | sed -n 's/\.json$//p' ;;
        retadm)     echo "status init inc reset edit doctor repair watch promote reverse switchback" ;;
        options)    ovios-shell options 2>/dev/null | awk 'NR > 2 { print $1 }' ;;
        replicated) ovios-shell retadm status --json 2>/dev/null \
                        | sed -n 's/^ *"dataset": "\(.*\)",$/\1/p' ;;
        local)      PATH="$PATH:/usr/sbin:/sbin" timeout 5 zfs list -H -o name -t filesystem,volume 2>/dev/null \
                        | grep / | grep -vxF -f <(_ovios_shell_words replicated) ;;
        # datasets carrying their own (locally set) origin mark, and those promoted
        replicas)   _ovios_shell_marked ovios:retadm.origin | grep -vxF -f <(_ovios_shell_words promoted) ;;
        promoted)   _ovios_shell_marked ovios:retadm.origin | grep -xF -f <(_ovios_shell_marked ovios:retadm.promoted) ;;
        back)       _ovios_shell_words promoted | grep -xF -f <(_ovios_shell_words replicated) ;;
        partners)   { ovios-shell retadm status --json 2>/dev/null \
                        | sed -n 's/^ *"destination": "\(.*\)",$/\1/p'
                      awk -v own="$(hostname -s 2>/dev/null)" '{ sub(/#.*/, "") }
                          NF > 1 && $1 !~ /^(127\.|::1$|fe00:|ff0)/ {
                              for (i = 2; i <= NF; i++) { split($i, n, "."); if (n[1] != own) print $i } }' \
                          /etc/hosts 2>/dev/null
                      awk '$1 !~ /^[#@|]/ { n = split($1, h, ","); for (i = 1; i <= n; i++) print h[i] }' \
                          ~/.ssh/known_hosts 2>/dev/null | sed 's/^\[\(.*\)\]:[0-9]*$/\1/' | grep -v '[*?!]'
                    } | awk '!seen[$0]++' ;;
    esac
}

# the datasets here that have property $1 set on themselves (not inherited, not received)
_ovios_shell_marked() {
    PATH="$PATH:/usr/sbin:/sbin" timeout 5 zfs get -H -s local -o name "$1" 2>/dev/null | grep -v @
}

# the pools of partner $1, over ssh with keys only; nothing when it does not answer soon
_ovios_shell_pools() {
    timeout 5 ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=3 "root@$1" \
        zpool list -H -o name 2>/dev/null
}

# the options of a retadm subcommand
_ovios_shell_retadm_options() {
    case "$1" in
        init)   echo "--dest --remote-pool --remote-name --properties --decrypted --bandwidth --retention --recursive --dry-run --help" ;;
        edit)   echo "--dest --address --bandwidth --properties --retention --dry-run --help" ;;
        inc|watch)    echo "--dest --dry-run --help" ;;
        reset|repair) echo "--dest --dry-run --yes --help" ;;
        switchback)   echo "--dry-run --yes --help" ;;
        promote)      echo "--key-file --dry-run --help" ;;
        reverse)      echo "--properties --dry-run --yes --help" ;;
        doctor)       echo "--dest --json --dry-run --help" ;;
        status)       echo "--json --replicas --dry-run --help" ;;
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
                    init:--properties|reverse:--properties|edit:--properties) words="yes no" ;;
                    *:--bandwidth|*:--retention|edit:--address) ;;  # a rate, a policy, a new address: free text
                    init:--dest) words=$(_ovios_shell_words partners) ;;
                    init:--remote-pool)
                        for ((i = 3; i < COMP_CWORD - 1; i++)); do
                            [ "${COMP_WORDS[i]}" = --dest ] && words=$(_ovios_shell_pools "${COMP_WORDS[i+1]}")
                        done
                        ;;
                    *:--dest|init:--remote-name) ;;  # a task's HOST[:REMOTE]; a new name: free text
                    promote:--key-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;  # a file
                    *)
                        # the dataset, unless one was given already
                        for ((i = 3; i < COMP_CWORD; i++)); do
                            case "${COMP_WORDS[i]}" in
                                --dest|--remote-pool|--remote-name|--properties|--key-file|--bandwidth|--retention|--address)
                                    ((i++)) ;;
                                -*) ;;
                                *) positional=${COMP_WORDS[i]} ;;
                            esac
                        done
                        if [ -z "$positional" ]; then
                            case "$sub" in
                                init)       words=$(_ovios_shell_words local) ;;
                                promote)    words=$(_ovios_shell_words replicas) ;;
                                reverse)    words=$(_ovios_shell_words promoted) ;;
                                switchback) words=$(_ovios_shell_words back) ;;
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
        case "$prev" in
            ssh.allow.root) words="on keys off" ;;
            *.enable)       words="on off" ;;
        esac
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}

complete -F _ovios_shell ovios-shell /usr/bin/ovios-shell
