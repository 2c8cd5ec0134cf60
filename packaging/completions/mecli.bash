# bash completion for mecli; made by 'mecli completion bash'.
_mecli() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmdpath="" word i
    case $prev in
    --add|--addr|--alias|--base|--body|--body-file|--bootstrap-node|--cert-path|--comment|--description|--head|--label|--name|--namespace|--output|--path|--reason|--remove|--replicas|--reply-to|--repo|--repo-id|--revision|--root|--state|--summary|--threshold|--title|--type|--wait) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        case $word in
        --add|--addr|--alias|--base|--body|--body-file|--bootstrap-node|--cert-path|--comment|--description|--head|--label|--name|--namespace|--output|--path|--reason|--remove|--replicas|--reply-to|--repo|--repo-id|--revision|--root|--state|--summary|--threshold|--title|--type|--wait) ((i++)) ;;
        -*) ;;
        *) cmdpath="${cmdpath:+$cmdpath }$word" ;;
        esac
    done
    if [[ $cur == -* ]]; then
        case $cmdpath in
        "") COMPREPLY=($(compgen -W "--json --root --help --version" -- "$cur")) ;;
        "auth init") COMPREPLY=($(compgen -W "--help --json --root" -- "$cur")) ;;
        "completion") COMPREPLY=($(compgen -W "--help --json --root" -- "$cur")) ;;
        "events") COMPREPLY=($(compgen -W "--help --json --root --type" -- "$cur")) ;;
        "issue assign") COMPREPLY=($(compgen -W "--add --help --json --remove --repo --root" -- "$cur")) ;;
        "issue close") COMPREPLY=($(compgen -W "--help --json --reason --repo --root" -- "$cur")) ;;
        "issue comment") COMPREPLY=($(compgen -W "--body --help --json --reply-to --repo --root" -- "$cur")) ;;
        "issue edit") COMPREPLY=($(compgen -W "--body --help --json --repo --root --title" -- "$cur")) ;;
        "issue label") COMPREPLY=($(compgen -W "--add --help --json --remove --repo --root" -- "$cur")) ;;
        "issue list") COMPREPLY=($(compgen -W "--help --json --repo --root --state" -- "$cur")) ;;
        "issue open") COMPREPLY=($(compgen -W "--body --body-file --help --json --label --repo --root --title" -- "$cur")) ;;
        "issue react") COMPREPLY=($(compgen -W "--comment --help --json --remove --repo --root" -- "$cur")) ;;
        "issue reopen") COMPREPLY=($(compgen -W "--help --json --repo --root" -- "$cur")) ;;
        "issue show") COMPREPLY=($(compgen -W "--help --json --repo --root" -- "$cur")) ;;
        "mcp") COMPREPLY=($(compgen -W "--help --json --root" -- "$cur")) ;;
        "node connect") COMPREPLY=($(compgen -W "--help --json --root" -- "$cur")) ;;
        "node id") COMPREPLY=($(compgen -W "--help --json --root" -- "$cur")) ;;
        "node list") COMPREPLY=($(compgen -W "--help --json --root" -- "$cur")) ;;
        "node peers") COMPREPLY=($(compgen -W "--help --json --root" -- "$cur")) ;;
        "node start") COMPREPLY=($(compgen -W "--addr --alias --bootstrap-node --cert-path --detach --help --json --relay --root" -- "$cur")) ;;
        "node status") COMPREPLY=($(compgen -W "--help --json --root" -- "$cur")) ;;
        "node stop") COMPREPLY=($(compgen -W "--help --json --root" -- "$cur")) ;;
        "patch checkout") COMPREPLY=($(compgen -W "--help --json --repo --root" -- "$cur")) ;;
        "patch close") COMPREPLY=($(compgen -W "--help --json --repo --root" -- "$cur")) ;;
        "patch comment") COMPREPLY=($(compgen -W "--body --help --json --reply-to --repo --revision --root" -- "$cur")) ;;
        "patch list") COMPREPLY=($(compgen -W "--help --json --repo --root --state" -- "$cur")) ;;
        "patch open") COMPREPLY=($(compgen -W "--base --description --draft --head --help --json --repo --root --title" -- "$cur")) ;;
        "patch ready") COMPREPLY=($(compgen -W "--help --json --repo --root" -- "$cur")) ;;
        "patch reopen") COMPREPLY=($(compgen -W "--help --json --repo --root" -- "$cur")) ;;
        "patch review") COMPREPLY=($(compgen -W "--accept --comment --help --json --reject --repo --revision --root --summary" -- "$cur")) ;;
        "patch revise") COMPREPLY=($(compgen -W "--base --description --head --help --json --repo --root" -- "$cur")) ;;
        "patch show") COMPREPLY=($(compgen -W "--help --json --repo --root" -- "$cur")) ;;
        "repo add") COMPREPLY=($(compgen -W "--description --help --json --name --path --root" -- "$cur")) ;;
        "repo clone") COMPREPLY=($(compgen -W "--help --json --namespace --output --repo-id --root" -- "$cur")) ;;
        "repo delegate add") COMPREPLY=($(compgen -W "--help --json --root" -- "$cur")) ;;
        "repo delegate remove") COMPREPLY=($(compgen -W "--help --json --root" -- "$cur")) ;;
        "repo edit") COMPREPLY=($(compgen -W "--description --help --json --name --root --threshold" -- "$cur")) ;;
        "repo list") COMPREPLY=($(compgen -W "--help --json --root --wide" -- "$cur")) ;;
        "repo pull") COMPREPLY=($(compgen -W "--help --json --path --repo-id --root" -- "$cur")) ;;
        "repo remove") COMPREPLY=($(compgen -W "--help --json --keep-replica --root" -- "$cur")) ;;
        "repo seed") COMPREPLY=($(compgen -W "--help --json --root" -- "$cur")) ;;
        "repo seed-request") COMPREPLY=($(compgen -W "--help --json --replicas --root --wait" -- "$cur")) ;;
        "repo show") COMPREPLY=($(compgen -W "--help --json --root" -- "$cur")) ;;
        "repo sync") COMPREPLY=($(compgen -W "--help --json --root" -- "$cur")) ;;
        "repo unseed") COMPREPLY=($(compgen -W "--help --json --root" -- "$cur")) ;;
        "repo verify") COMPREPLY=($(compgen -W "--help --json --root" -- "$cur")) ;;
        esac
        return
    fi
    case $cmdpath in
    "") COMPREPLY=($(compgen -W "auth completion events help issue mcp node patch repo" -- "$cur")) ;;
    "auth") COMPREPLY=($(compgen -W "init" -- "$cur")) ;;
    "completion") COMPREPLY=($(compgen -W "bash fish zsh" -- "$cur")) ;;
    "help") COMPREPLY=($(compgen -W "auth completion events issue mcp node patch repo" -- "$cur")) ;;
    "issue") COMPREPLY=($(compgen -W "assign close comment edit label list open react reopen show" -- "$cur")) ;;
    "node") COMPREPLY=($(compgen -W "connect id list peers start status stop" -- "$cur")) ;;
    "patch") COMPREPLY=($(compgen -W "checkout close comment list open ready reopen review revise show" -- "$cur")) ;;
    "repo") COMPREPLY=($(compgen -W "add clone delegate edit list pull remove seed seed-request show sync unseed verify" -- "$cur")) ;;
    "repo delegate") COMPREPLY=($(compgen -W "add remove" -- "$cur")) ;;
    *) COMPREPLY=($(compgen -f -- "$cur")) ;;
    esac
}
complete -F _mecli mecli
