# The two commands of the README: `make demo` (the main job) and `make test` (everything CI runs).
# Both work from a fresh clone with only Python 3.11+ and make: they create .venv themselves.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Re-install when pyproject.toml changes.
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint wheel clean browser-deps

demo: $(STAMP) browser-deps
	$(BIN)/atlassian-playbook demo

test: $(STAMP) browser-deps
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/nbstripout --verify notebooks/*.ipynb
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The sdist, then the wheel built from it (it carries the notebooks): `pip install dist/*.whl`.
wheel: $(STAMP)
	$(BIN)/python -m build --outdir dist .

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The browser tests, and the training site's diagrams (drawn to SVG at build time), drive Debian's
# chromium (playwright's own browser download does not work here). Installed when missing and we
# can; otherwise those tests skip and the site shows each diagram's source, both saying why.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian chromium for the browser tests"; \
	    (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) || \
	    echo "warning: could not install chromium; browser tests will be skipped"; \
	  else echo "warning: chromium missing and not root; browser tests will be skipped"; fi; }

clean:
	rm -rf $(VENV) output test-artifacts .pytest_cache dist build
