#!/usr/bin/env bash
# Prints a command that runs a working Python 3.10 (Rasa 3.6 needs <3.11).
# pyenv's python3.10 shim exists but fails while the global version is 3.11,
# so every candidate is actually run before it is chosen.
set -u
candidates=(python3.10)
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root)
  for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)' | sort -rV); do
    candidates+=("$root/versions/$v/bin/python3.10")
  done
fi
candidates+=(/usr/bin/python3.10 /usr/local/bin/python3.10)
for c in "${candidates[@]}"; do
  if "$c" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
    echo "$c"
    exit 0
  fi
done
echo "error: Python 3.10 not found (Rasa 3.6 needs Python 3.10). Install it, e.g. 'pyenv install 3.10.13'." >&2
exit 1
