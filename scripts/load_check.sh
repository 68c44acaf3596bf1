#!/usr/bin/env bash
# Load check: run the test suite while CPU hogs keep every core busy, and append the outcome (wall time,
# pass/fail, pytest's counts) to bench/results/load_check.json. A suite that passes only on an idle machine
# has a timing race; this is how to find it before CI does.
#
#   scripts/load_check.sh                                # `make test` (the whole suite) under load
#   scripts/load_check.sh tests/test_processes.py -x     # pytest with these arguments instead
#   LOAD_CHECK_HOGS=4 scripts/load_check.sh ...          # hog processes (default: one per core)
#
# The hogs run at the suite's own priority, in their own process group, and are stopped when this script
# exits (also on Ctrl-C). The suite's full output goes to $LOAD_CHECK_LOG (default /tmp/agentgym-load-check.log).
set -uo pipefail
cd "$(dirname "$0")/.."

HOGS="${LOAD_CHECK_HOGS:-$(nproc)}"
LOG="${LOAD_CHECK_LOG:-/tmp/agentgym-load-check.log}"
RESULTS="${LOAD_CHECK_RESULTS:-bench/results/load_check.json}"
PY="${VENV:-.venv}/bin/python"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0

if [ "$#" -gt 0 ]; then
    CMD=("$PY" -m pytest -q -p no:cacheprovider "$@")
else
    CMD=(make test)
fi

# the hogs: one busy loop per core, started as one new process group so that one signal stops them all
setsid bash -c 'for _ in $(seq "$1"); do (while :; do :; done) & done; wait' hog "$HOGS" &
HOG_LEADER=$!
stop_hogs() {
    kill -KILL -- "-$HOG_LEADER" 2>/dev/null
    wait "$HOG_LEADER" 2>/dev/null
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "load check: ${CMD[*]} with $HOGS CPU hog(s) on $(nproc) core(s); log: $LOG"
START=$(date +%s.%N)
"${CMD[@]}" >"$LOG" 2>&1
RC=$?
END=$(date +%s.%N)
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
stop_hogs
trap - EXIT

SUMMARY="$(grep -E '^=*.*[0-9]+ (passed|failed|error|errors|skipped|deselected)' "$LOG" | tail -1 | tr -d '=' | sed 's/^ *//;s/ *$//')"
mkdir -p "$(dirname "$RESULTS")"
python3 - "$RESULTS" "$RC" "$START" "$END" "$HOGS" "$LOAD_BEFORE" "$LOAD_AFTER" "$SUMMARY" "${CMD[*]}" <<'EOF'
"""Append this run's entry to the results file (a JSON list), creating it on the first run."""
import datetime
import json
import os
import re
import subprocess
import sys

path, rc, start, end, hogs, load_before, load_after, summary, command = sys.argv[1:]
counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed)", summary)}
if "error" in counts:
    counts["errors"] = counts.pop("error")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
entry = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "command": command,
    "passed": int(rc) == 0,
    "exit_code": int(rc),
    "wall_s": round(float(end) - float(start), 1),
    "counts": counts,
    "summary": summary,
    "cpu_hogs": int(hogs),
    "cores": os.cpu_count(),
    "loadavg_before": load_before,
    "loadavg_after": load_after,
    "commit": commit,
}
runs = []
if os.path.exists(path):
    with open(path) as f:
        runs = json.load(f)
runs.append(entry)
tmp = f"{path}.tmp"
with open(tmp, "w") as f:
    json.dump(runs, f, indent=1)
    f.write("\n")
os.replace(tmp, path)
print(json.dumps(entry))
EOF
exit "$RC"
