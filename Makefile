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

.PHONY: install system-deps test demo bench clean

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

test: install
	$(PY) -m pytest -q -p no:cacheprovider

demo: install
	rm -rf runs/demo
	$(VENV)/bin/agentgym bench agentgym/sql-v0 --policy oracle --split test --episodes 200 --concurrency 8 --out runs/demo/oracle
	$(VENV)/bin/agentgym bench agentgym/sql-v0 --policy random --split test --episodes 200 --concurrency 8 --out runs/demo/random
	@echo "reports: runs/demo/oracle/report.md runs/demo/random/report.md"

bench: install
	$(PY) bench/sql_env_latency.py
	$(PY) bench/rollout_overlap.py
	$(PY) bench/code_sandbox.py
	$(PY) bench/search_retrieval.py
	$(PY) bench/web_latency.py
	$(PY) bench/web_soak.py
	$(PY) bench/gui_latency.py
	$(PY) bench/gui_soak.py

clean:
	rm -rf $(VENV) runs .pytest_cache
