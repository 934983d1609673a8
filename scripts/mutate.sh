#!/usr/bin/env bash
# Mutation testing of semcomp_core/{bitstream,layers,metrics,codecs} with mutmut (not in CI: slow).
# Configuration: the [mutmut] section of setup.cfg. Results and the list of equivalent mutants:
# docs/testing/mutation.md.
#
#   scripts/mutate.sh                    fresh run over all four folders, then the score
#   scripts/mutate.sh 'semcomp_core.bitstream*'   only the mutants whose names match (per folder)
#   scripts/mutate.sh --summary          print the score of the last run (mutants/) again
#
# Environment: MUTATE_JOBS (worker processes, default 2), MUTATE_KEEP=1 (reuse mutants/ and its
# cached verdicts instead of starting fresh). Exits 0 when mutants survive; non-zero only when
# the run itself fails (e.g. the unmutated tests fail).
set -euo pipefail
cd "$(dirname "$0")/.."
MUTMUT_VERSION=3.8.1

summary() {
  local code
  code=$(cat <<'PY'
import collections, re, sys
by_file = collections.defaultdict(collections.Counter)
for line in sys.stdin:
    m = re.match(r"\s+semcomp_core\.(\S+?)\.x\S*: (.+)$", line.rstrip())
    if m:
        by_file[m.group(1)][m.group(2)] += 1
folders = collections.defaultdict(collections.Counter)
for name, c in by_file.items():
    folders[name.split(".")[0]] += c
cols = ("killed", "survived", "timeout", "no tests", "unchecked", "other", "total", "score")
def row(name, c):
    n = sum(c.values())
    caught = c["killed"] + c["timeout"]
    checked = n - c["not checked"]
    other = checked - caught - c["survived"] - c["no tests"]
    cells = [c["killed"], c["survived"], c["timeout"], c["no tests"], c["not checked"], other, n]
    score = f"{100.0 * caught / checked:.1f}%" if checked else "-"
    return f"{name:<26}" + "".join(f"{v:>10}" for v in cells) + f"{score:>10}"
print(f"{'module':<26}" + "".join(f"{c:>10}" for c in cols))
for name in sorted(by_file):
    print(row(name, by_file[name]))
print()
for name in sorted(folders):
    print(row(name + "/", folders[name]))
print(row("all", sum(folders.values(), collections.Counter())))
print("score = (killed + timeout) / checked mutants (no tests counts as not killed); unchecked: not run yet")
print("(an interrupted or per-folder run). Survivors: .venv/bin/mutmut results; one: .venv/bin/mutmut show NAME")
PY
)
  .venv/bin/mutmut results --all true | .venv/bin/python -c "$code"
}

if [ "${1:-}" = "--summary" ]; then
  summary
  exit 0
fi

./scripts/setup.sh
if ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('mutmut') != '$MUTMUT_VERSION')" 2>/dev/null; then
  echo "[mutate] installing mutmut==$MUTMUT_VERSION into .venv" >&2
  .venv/bin/python -m pip install --disable-pip-version-check -q "mutmut==$MUTMUT_VERSION"
fi

[ "${MUTATE_KEEP:-0}" = "1" ] || rm -rf mutants
# One thread per worker: the workers already use the cores.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# The tests run inside mutants/, so conftest's default CamVid path (next to the repository) moves.
[ -z "${SEMCOMP_CAMVID:-}" ] && [ -d ../shared/data/camvid ] && export SEMCOMP_CAMVID="$PWD/../shared/data/camvid"
start=$(date +%s)
.venv/bin/mutmut run --max-children "${MUTATE_JOBS:-2}" "$@"
echo "[mutate] mutmut $MUTMUT_VERSION run took $(( $(date +%s) - start )) s" >&2
summary
