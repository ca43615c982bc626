#!/usr/bin/env sh
# Print the path of a Python >= 3.12 interpreter (DOLFINx 0.11 wheels need it), or fail
# with a message saying what was tried. Order: $PYTHON, interpreters on PATH, pyenv's.
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
for c in "${PYTHON:-}" python3.14 python3.13 python3.12 python3; do
    [ -n "$c" ] || continue
    p=$(command -v "$c" 2>/dev/null) || continue
    if ok "$p"; then "$p" -c 'import sys; print(sys.executable)'; exit 0; fi
done
root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-${HOME:-/root}/.pyenv}")
for p in $(ls -d "$root"/versions/3.12*/bin/python3 "$root"/versions/3.1[3-9]*/bin/python3 2>/dev/null); do
    if ok "$p"; then echo "$p"; exit 0; fi
done
echo "find-python: no Python >= 3.12 found (tried \$PYTHON, python3.14..python3 on PATH, $root/versions)." >&2
echo "find-python: install one (e.g. 'pyenv install 3.12') or set PYTHON=/path/to/python3.12." >&2
exit 1
