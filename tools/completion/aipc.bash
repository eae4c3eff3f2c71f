# SPDX-License-Identifier: ISC
# bash completion for aipc(1): its commands, each command's options, and
# device ids for --device (from "aipc devices", asked of the same server
# the command line names with --connect or --backend).

# Device ids of `direction` (output or input) for the words of this line.
_aipc_device_ids()
{
  local direction=$1 i where=()
  for ((i = 2; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
    --connect | --backend)
      where+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}")
      ;;
    esac
  done
  # A line a device: direction, id, ...; the header and the count line
  # have no direction.
  timeout 5 "${COMP_WORDS[0]}" devices "${where[@]}" 2>/dev/null |
    awk -v d="$direction" '$1 == d { print $2 }'
}

_aipc()
{
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  local commands="demo serve top play record devices info bench"
  COMPREPLY=()
  if ((COMP_CWORD == 1)); then
    COMPREPLY=($(compgen -W "$commands --version --help" -- "$cur"))
    return
  fi
  local cmd=${COMP_WORDS[1]} opts
  case $cmd in
  demo) opts="--clients --seconds --backend --out --help" ;;
  serve) opts="--listen --backend --help" ;;
  top) opts="--connect --once --json --help" ;;
  play)
    opts="--connect --backend --device --volume --latency --tone --seconds
      --rate --channels --format --help"
    ;;
  record)
    opts="--connect --backend --device --volume --latency --seconds --rate
      --channels --format --help"
    ;;
  devices | info) opts="--connect --backend --help" ;;
  bench) opts="--quick --json --help" ;;
  *) return ;;
  esac

  case $prev in
  --connect | --listen | --out)
    COMPREPLY=($(compgen -f -- "$cur"))
    return
    ;;
  --backend)
    COMPREPLY=($(compgen -W "pulse alsa jack virtual virtual:clock=realtime
      virtual:clock=fast" -- "$cur"))
    return
    ;;
  --device)
    local direction=output
    [ "$cmd" = record ] && direction=input
    COMPREPLY=($(compgen -W "$(_aipc_device_ids $direction)" -- "$cur"))
    return
    ;;
  --format)
    COMPREPLY=($(compgen -W "s16le s16be f32le f32be" -- "$cur"))
    return
    ;;
  --clients | --seconds | --tone | --volume | --latency | --rate | --channels)
    return # a number
    ;;
  esac

  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [ "$cmd" = play ] || [ "$cmd" = record ]; then
    COMPREPLY=($(compgen -f -- "$cur") $(compgen -W "-" -- "$cur"))
  fi
}

complete -o filenames -F _aipc aipc
