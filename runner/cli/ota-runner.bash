# bash completion for ota-runner
_ota_runner() {
    local cur prev words cword
    _init_completion 2>/dev/null || {
        cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
    }
    local commands="init envs validate tokens plan show diff apply status state version"
    local global="--help --verbose --debug --no-color"
    local source="--repo --ref --path --worktree --cache-dir --fetch-timeout --fetch-idle-timeout --env --parallel-envs --allowed-signers --openpgp-keys --verify-commits --require-author-signatures --output"
    local service="--region --profile --role-arn --endpoint-url --parallelism --max-rps --retry-mode --max-attempts --connect-timeout --request-timeout --state --lock-timeout --lock-stale-after"
    local plan="--prune --max-deletes --allow-cancel --allow-empty --allow-older --no-adopt --migrate-endpoint --target --refresh"

    case $prev in
        --output|-o) COMPREPLY=($(compgen -W "text json markdown github github-matrix gitlab names" -- "$cur")); return ;;
        --refresh) COMPREPLY=($(compgen -W "none list full" -- "$cur")); return ;;
        --repo|--cache-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --state|--out) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --ref|--path|--env|--parallel-envs|--role-arn|--region|--profile|--endpoint-url|--parallelism|--max-rps|--max-attempts|\
        --connect-timeout|--request-timeout|--max-deletes|--target|--lock-timeout|\
        --lock-stale-after|--to) return ;;
    esac

    local cmd="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in init|envs|validate|tokens|plan|show|diff|apply|status|state|version) cmd=${words[i]}; break ;; esac
    done
    case $cmd in
        "") COMPREPLY=($(compgen -W "$commands $global" -- "$cur")) ;;
        init|envs|validate|tokens) COMPREPLY=($(compgen -W "$global $source" -- "$cur")) ;;
        plan) COMPREPLY=($(compgen -W "$global $source $service $plan --out --detailed-exitcode" -- "$cur")) ;;
        diff) COMPREPLY=($(compgen -W "$global $source --detailed-exitcode" -- "$cur")) ;;
        show) COMPREPLY=($(compgen -W "$global --output --detailed-exitcode --max-deletes --allow-cancel --allow-empty" -- "$cur"))
              [[ $cur != -* ]] && COMPREPLY+=($(compgen -f -- "$cur")) ;;
        apply) COMPREPLY=($(compgen -W "$global $source $service $plan --fail-fast --fail-on-halt --auto-approve --notify --notify-required --metrics-file --pushgateway" -- "$cur"))
               [[ $cur != -* ]] && COMPREPLY+=($(compgen -f -- "$cur")) ;;
        status) COMPREPLY=($(compgen -W "$global $service --output --fail-on-halt --devices --all" -- "$cur")) ;;
        state) if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$global $source $service --to" -- "$cur"))
               else COMPREPLY=($(compgen -W "list show rm mv import rebuild unlock migrate" -- "$cur")); fi ;;
        version) COMPREPLY=($(compgen -W "$global" -- "$cur")) ;;
    esac
}
complete -F _ota_runner ota-runner
