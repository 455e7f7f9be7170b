# Two entry points (see README): `make demo` runs the product on the local test bed,
# `make test` runs every check. Both install what they need first, on a fresh machine too.
PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
APT_PKGS  := prometheus prometheus-alertmanager haproxy git openssl mariadb-server rabbitmq-server

.PHONY: demo test bench lint typecheck bootstrap system-packages go-binaries clean-testbeds

demo: bootstrap
	$(BIN)/python -m testbed --dir $(CURDIR)/.testbed/demo demo

test: bootstrap lint typecheck
	$(BIN)/pytest -q tests

bench: bootstrap
	$(BIN)/python tests/benchmarks/run_all.py

lint:
	$(BIN)/ruff check openstack_gitops reconciler autoscaler healthwatcher testbed tests
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy

bootstrap: system-packages $(VENV)/.installed go-binaries

system-packages:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing -- run: sudo apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	fi
	@command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] || { echo "the Go toolchain (>= 1.26) is required to build the test bed: https://go.dev/dl" >&2; exit 1; }

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

go-binaries: $(VENV)/.installed
	PATH="$$PATH:/usr/local/go/bin" $(BIN)/python -m testbed build
