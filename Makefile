# walletd: `make run` starts a development server, `make test` runs lint and the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT
# Links printed by the demo and written into passes must point at the port actually served.
WALLETD_BASE_URL ?= http://127.0.0.1:$(PORT)
export WALLETD_BASE_URL

.PHONY: run test lint pytest fuzz bench clean install install-dev lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The pinned lock, then walletd itself (editable, no dependencies of its own) for the `walletd` command.
$(VENV)/.runtime: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

# requirements.txt (runtime) and requirements-dev.txt (the `dev` extra) are generated from the ranges
# in pyproject.toml by pip-compile: edit pyproject.toml, then `make lock`. Pins already in the files
# are kept while they satisfy the ranges; `make lock LOCK_UPGRADE=--upgrade` moves to the newest.
LOCK_UPGRADE ?=
LOCK := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-find-links --no-emit-trusted-host $(LOCK_UPGRADE)
lock: $(VENV)/.dev
	$(LOCK) --output-file requirements.txt pyproject.toml
	$(LOCK) --extra dev --constraint requirements.txt --output-file requirements-dev.txt pyproject.toml

run: $(VENV)/.runtime
	$(BIN)/flask --app walletd init-db
	$(BIN)/flask --app walletd dev-certs --if-missing
	$(BIN)/flask --app walletd demo
	WALLETD_WORKER=$${WALLETD_WORKER:-embedded} $(BIN)/flask --app walletd run --host 127.0.0.1 --port $(PORT) --no-reload --with-threads

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The suite runs on every core (pytest-xdist): a test file stays on one worker, so the
# package-scoped browser stacks and the session-scoped migrated databases are made once per worker.
PYTEST_WORKERS ?= auto
pytest: $(VENV)/.dev
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

test: lint pytest

# The fuzzer with a large budget (`make test` runs it with a small one): every operation of
# /openapi.json as an admin key, a cashier key and anonymously, valid and invalid inputs.
fuzz: $(VENV)/.dev
	WALLETD_FUZZ_EXAMPLES=$${WALLETD_FUZZ_EXAMPLES:-200} $(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile tests/fuzz -o timeout=7200

bench: $(VENV)/.dev
	$(BIN)/python bench/scan.py
	$(BIN)/python bench/passes.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Page texts (README "Translate"): extract every `_()`, `ngettext()` and `N_()` text of the code
# and templates into messages.pot, merge it into each language's .po (translate what is new or
# fuzzy there), and compile the .mo files that the package ships (committed, tested to match).
I18N := walletd/translations
translations: $(VENV)/.runtime
	$(BIN)/pybabel -q extract -F $(I18N)/babel.cfg -k N_ --add-location file --sort-output -w 100 \
		--project walletd --copyright-holder walletd -o $(I18N)/messages.pot .
	$(BIN)/pybabel -q update -i $(I18N)/messages.pot -d $(I18N) -D messages -w 100 --ignore-obsolete
	$(BIN)/pybabel compile -d $(I18N) -D messages --statistics

.PHONY: translations
