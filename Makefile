# agentgym: `make demo` runs the main job, `make test` runs the tests. Both install what they need, idempotently.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: install system-deps vllm test load-check demo demo-baselines bench bench-train clean

# Debian packages the envs drive for real: bubblewrap (code sandbox), chromium + fonts (web). Installed only if missing.
system-deps:
	@missing=""; \
	command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$$missing fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

install: system-deps $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The CPU build of real vLLM, in its own virtualenv (it pins its own torch/transformers); the vLLM tests use it.
vllm:
	bash scripts/install_vllm.sh $(CURDIR)/.venv-vllm

test: install vllm
	$(PY) -m pytest -q -p no:cacheprovider

# The suite under load: `make test` while CPU hogs keep every core busy; appends wall time and pass/fail to
# bench/results/load_check.json. `make load-check PYTEST_ARGS="tests/test_processes.py"` runs a selection.
load-check: install vllm
	bash scripts/load_check.sh $(PYTEST_ARGS)

# The product's main job on CPU (~15 min on 2 cores): tiny model -> SFT on oracle SQL trajectories (train split)
# -> turn-level RL (GiGPO) -> both checkpoints benchmarked on the same held-out SQL tasks -> comparison report.
# Each stage skips work that is already done, so an interrupted `make demo` resumes.
DEMO := runs/demo
AGENTGYM := $(VENV)/bin/agentgym
DEMO_BENCH := --split test --axis iid --episodes 110 --max-tokens 96 --max-model-len 4096 --no-progress
demo: install
	$(AGENTGYM) train agentgym/sql-v0 --model tiny --tiny-hidden 128 --tiny-layers 2 --out $(DEMO) \
	  --sft oracle --sft-episodes 800 --sft-steps 450 --sft-lr 2e-3 \
	  --algo gigpo --episodes 192 --tasks-per-step 4 --group-size 4 --lr 3e-5 --max-tokens 96 \
	  --reward-shaping invalid_action=-0.1,tool_error=-0.05,syntax_ok=0.1,schema_jaccard=0.2 --dev-episodes 16
	$(AGENTGYM) bench agentgym/sql-v0 --policy hf --model $(DEMO)/sft/final $(DEMO_BENCH) --out $(DEMO)/bench-sft --resume
	$(AGENTGYM) bench agentgym/sql-v0 --policy hf --model $(DEMO)/rl/final $(DEMO_BENCH) --out $(DEMO)/bench-rl --resume
	$(AGENTGYM) compare $(DEMO)/bench-sft $(DEMO)/bench-rl --label sft --label sft+rl --out $(DEMO)
	@echo "reports: $(DEMO)/rl/train_report.md (training) $(DEMO)/compare.md (held-out) $(DEMO)/bench-*/report.md"

# The spine's demo: the oracle and the random policy on 200 held-out SQL tasks (seconds, no model).
demo-baselines: install
	$(AGENTGYM) bench agentgym/sql-v0 --policy oracle --split test --episodes 200 --concurrency 8 --out runs/baselines/oracle --resume
	$(AGENTGYM) bench agentgym/sql-v0 --policy random --split test --episodes 200 --concurrency 8 --out runs/baselines/random --resume

bench: install
	$(PY) bench/sql_env_latency.py
	$(PY) bench/rollout_overlap.py
	$(PY) bench/code_sandbox.py
	$(PY) bench/search_retrieval.py
	$(PY) bench/web_latency.py
	$(PY) bench/web_soak.py
	$(PY) bench/gui_latency.py
	$(PY) bench/gui_soak.py

# Serving, training and search experiments (minutes each on 2 cores; the vLLM ones need `make vllm`).
bench-train: install vllm
	$(PY) bench/generation_throughput.py
	$(PY) bench/rollout_vllm.py
	$(PY) bench/trainer_throughput.py
	$(PY) bench/sft_checkpoint.py
	$(PY) bench/decisive_turn.py
	$(PY) bench/qvalue_best_of_n.py
	$(PY) bench/search_vs_sampling.py
	$(PY) bench/mcts_dpo.py
	$(PY) bench/sql_sft_vs_rl.py

clean:
	rm -rf $(VENV) .venv-vllm runs .pytest_cache
