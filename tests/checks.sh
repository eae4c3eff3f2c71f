# SPDX-License-Identifier: ISC
# Sourced by the shell tests: counts checks as PASS or FAIL lines, for a
# closing "N passed, N failed".

passed=0
failed=0

# result STATUS NAME: a check whose command exited with STATUS.
result() {
  if [ "$1" -eq 0 ]; then
    echo "PASS: $2"
    passed=$((passed + 1))
  else
    echo "FAIL: $2"
    failed=$((failed + 1))
  fi
}

# indent [FILE]: shows a file (or stdin) in the log, indented.
indent() {
  sed 's/^/    | /' "$@"
}
