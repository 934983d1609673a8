#!/usr/bin/env bash
# Demonstrate that the regression tests catch deliberate faults (not part of CI).
#
# For every test/faults/*.patch: build a temporary copy of the code, apply the patch there, run
# the tests that must catch it, and require that they FAIL. The clean copy must PASS them first.
# The checkout you run this from is never modified.
#
#   scripts/check_faults.sh                 # temporary git worktree at HEAD (committed code)
#   scripts/check_faults.sh REF             # ... at another commit
#   scripts/check_faults.sh --working-tree  # a copy of the current files, uncommitted edits included
#
# Which tests must catch a fault: the patch's "# tests:" line (pytest node ids, space separated),
# default test/test_quality_regression.py. Python: $PYTHON, else .venv/bin/python of this checkout.
# The patches and those test files are taken from the checkout running this script. The copy's
# own code is what gets imported (PYTHONPATH; checked), not an editable install.
# Exit status 0 when the clean copy passes and every fault is caught, 1 otherwise.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
[[ -x $PYTHON ]] || PYTHON=$(command -v python3)
MODE=worktree
REF=HEAD
case "${1:-}" in
  --working-tree) MODE=copy ;;
  -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
  "") ;;
  *) REF=$1 ;;
esac

TMP=$(mktemp -d "${TMPDIR:-/tmp}/semcomp_faults.XXXXXX")
WT=$TMP/tree
cleanup() {
  if [[ $MODE == worktree ]]; then git -C "$REPO" worktree remove --force "$WT" >/dev/null 2>&1 || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

if [[ $MODE == worktree ]]; then
  git -C "$REPO" worktree add --detach --quiet "$WT" "$REF"
  echo "temporary worktree at $(git -C "$WT" rev-parse --short HEAD) in $WT"
else
  mkdir -p "$WT"
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
     | while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done \
     | tar --null -cf - -T -) | tar -xf - -C "$WT"
  git -C "$WT" init --quiet   # so that `git apply` works in the copy
  echo "temporary copy of the working tree in $WT"
fi
# the fault patches and the tests that must catch them come from the checkout running this
mkdir -p "$WT/test/faults"
cp "$REPO"/test/faults/*.patch "$WT/test/faults/"
for f in $(grep -h '^# tests:' "$REPO"/test/faults/*.patch | cut -d: -f2- | tr ' ' '\n' | sed 's/::.*//' | sort -u) \
         test/test_quality_regression.py; do
  cp "$REPO/$f" "$WT/$f"
done

export PYTHONPATH=$WT PYTHONDONTWRITEBYTECODE=1
cd "$WT"
imported=$("$PYTHON" -c 'import os, semcomp_core as m; print(os.path.dirname(os.path.dirname(os.path.realpath(m.__file__))))')
if [[ $imported != "$(realpath "$WT")" ]]; then
  echo "error: semcomp_core imported from $imported, not from $WT" >&2
  exit 1
fi

tests_of() {
  local line
  line=$(grep -m1 '^# tests:' "$1" || true)
  if [[ -n $line ]]; then echo "${line#\# tests:}"; else echo test/test_quality_regression.py; fi
}

run_tests() {  # run_tests LOG TEST... ; returns pytest's status
  local log=$1; shift
  "$PYTHON" -m pytest -q -p no:cacheprovider -m "not slow and not gpu and not ros" "$@" >"$log" 2>&1
}

status=0
patches=("$WT"/test/faults/*.patch)
all_tests=$(for p in "${patches[@]}"; do tests_of "$p"; done | tr ' ' '\n' | sed '/^$/d' | sort -u | tr '\n' ' ')
echo "== clean: $all_tests"
# shellcheck disable=SC2086
if run_tests "$TMP/clean.log" $all_tests; then
  echo "   pass ($(tail -n1 "$TMP/clean.log"))"
else
  echo "   FAIL: the clean code must pass these tests first" >&2
  tail -n 30 "$TMP/clean.log" >&2
  exit 1
fi

for patch in "${patches[@]}"; do
  name=$(basename "$patch" .patch)
  tests=$(tests_of "$patch")
  files=$(sed -n 's|^+++ b/||p' "$patch")
  rm -rf "$TMP/backup" && mkdir -p "$TMP/backup"
  for f in $files; do mkdir -p "$TMP/backup/$(dirname "$f")" && cp -p "$f" "$TMP/backup/$f"; done
  # exact context first; the fuzzy fallback copes with edits next to the faulty line since the patch was made
  if ! git apply "$patch" 2>/dev/null \
     && ! patch -p1 --quiet --fuzz=2 --no-backup-if-mismatch --reject-file=- <"$patch"; then
    echo "== $name: patch does not apply here (update test/faults/$name.patch)" >&2
    for f in $files; do cp -p "$TMP/backup/$f" "$f"; done
    status=1
    continue
  fi
  # shellcheck disable=SC2086
  if run_tests "$TMP/$name.log" $tests; then
    echo "== $name: NOT CAUGHT, the tests pass with the fault ($tests)" >&2
    status=1
  else
    echo "== $name: caught ($(tail -n1 "$TMP/$name.log"))"
    grep -E '^FAILED' "$TMP/$name.log" | sed 's/^/   /' || true
  fi
  for f in $files; do cp -p "$TMP/backup/$f" "$f"; done   # back to the clean code
done

if [[ $status == 0 ]]; then echo "every fault is caught"; else echo "some faults are not caught" >&2; fi
exit $status
