# Checks of the options every recipe's run.sh takes, sourced by each after its option loop (recipes never import
# one another; this is their one shared file). Each prints one line and exits 2 on a bad value, before any work.

# check_stages FIRST LAST STAGE STOP_STAGE: both stages whole numbers within FIRST..LAST, STAGE not after STOP_STAGE
check_stages() {
  local flag value
  for flag in --stage --stop-stage; do
    value=$3; [ "$flag" = --stop-stage ] && value=$4
    [[ "$value" =~ ^[0-9]$ ]] && [ "$value" -ge "$1" ] && [ "$value" -le "$2" ] ||
      { echo "run.sh: $flag must be a whole number from $1 to $2, got '$value'" >&2; exit 2; }
  done
  if [ "$3" -gt "$4" ]; then
    echo "run.sh: --stage $3 is after --stop-stage $4: no stage would run" >&2; exit 2
  fi
}

# check_threads N: empty (each command's own choice) or a whole number from 1 to 999
check_threads() {
  if [ -n "$1" ] && ! [[ "$1" =~ ^[1-9][0-9]{0,2}$ ]]; then
    echo "run.sh: --threads must be a whole number from 1 to 999, got '$1'" >&2; exit 2
  fi
}
