# The two commands of the README: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Django 6.x needs Python >= 3.12: the second test run uses it.
PYTHON312 ?= $(firstword $(shell command -v python3.12 2>/dev/null | xargs -r -I{} sh -c '{} -c "" 2>/dev/null && echo {}') $(wildcard /root/.pyenv/versions/3.12*/bin/python3.12) $(wildcard /usr/bin/python3.1[2-9]))
VENV6 ?= .venv-django6
PY6 := $(VENV6)/bin/python
PYTEST_ARGS ?=
PG_PYTEST_ARGS ?=
BENCH_ARGS ?=
ATTACK_ARGS ?=
TIMING_ARGS ?=
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-django52 test-django6 lint docs bench bench-timing attack-sim clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]" "Django>=5.2,<5.3"
	touch $@

$(VENV6)/.installed: pyproject.toml
	@test -n "$(PYTHON312)" || { echo "ERROR: Django 6 needs Python >= 3.12 and none was found (set PYTHON312=...)"; exit 1; }
	$(PYTHON312) -m venv $(VENV6)
	$(PY6) -m pip install -q --upgrade pip
	$(PY6) -m pip install -q -e ".[test]" "Django>=6.0,<7"
	touch $@

install: $(VENV)/.installed

## demo: the example project on SQLite, codes printed on this console, at http://127.0.0.1:8000
demo: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo_data
	$(PY) manage.py runserver 127.0.0.1:8000

## test: the whole suite on Django 5.2 LTS (Python 3.11), then on Django 6.x (Python 3.12);
## the 5.2 run first runs make lint (ruff, mypy with django-stubs, and the documentation built
## with warnings as errors; ~15 s), so CI's `make test` checks them too;
## each also runs tests/postgres in its own session, in-process on a real PostgreSQL (~15 s):
## ICU's root locale on 5.2, glibc's C.UTF-8 on 6.x (both fold beyond ASCII, differently)
test: test-django52 test-django6

test-django52: install lint
	$(PY) -m django --version
	$(PY) -m pytest $(PYTEST_ARGS)
	CIAM_OTP_PG_LOCALE=icu $(PY) -m pytest tests/postgres $(PG_PYTEST_ARGS)

test-django6: $(VENV6)/.installed
	$(PY6) -m django --version
	$(PY6) -m pytest -m "not integration and not browser and not packaging" $(PYTEST_ARGS)
	CIAM_OTP_PG_LOCALE=libc $(PY6) -m pytest tests/postgres $(PG_PYTEST_ARGS)

## lint: ruff, then mypy with django-stubs on the package ([tool.mypy] in pyproject.toml)
lint: install docs
	$(VENV)/bin/ruff check django_ciam_otp tests example_project
	$(VENV)/bin/ruff format --check django_ciam_otp tests example_project
	$(VENV)/bin/mypy django_ciam_otp

## docs: the documentation site (mkdocs.yml, docs/) into var/site; any warning fails (--strict)
docs: install
	@$(PY) -c "import material, mkdocstrings_handlers.python" 2>/dev/null || $(PY) -m pip install -q -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet -d var/site

## bench: the send path against the floor of the stack and against the peers (django-allauth,
## drfpasswordless; issue 15) on loopback PostgreSQL, Redis, gunicorn, Celery and wrk (Debian packages
## postgresql, redis-server, wrk); about 10 minutes; see BENCHMARKS.md, e.g.
## BENCH_ARGS="--peers-only" (the peers step alone, ~4 min), "--rounds 5", "--no-peers"
bench: install
	@command -v wrk >/dev/null || { echo "ERROR: wrk not found: apt-get install -y wrk"; exit 1; }
	$(PY) -m pip install -q -r bench/requirements.txt
	$(PY) -m bench.run $(BENCH_ARGS)

## bench-timing: timing of known against unknown identifiers: client authentication (a
## known client_id with a wrong secret vs an unknown one, in-process) and reset_password with and without
## an account (HTTP on the live stack, ~2 min); see bench/timing.py,
## e.g. TIMING_ARGS="--only client-auth --rounds 50000 --json timing.json"
bench-timing: install
	$(PY) -m pip install -q -r bench/requirements.txt
	$(PY) -m bench.timing $(TIMING_ARGS)

## attack-sim: legitimate users and an SMS-pumping bot against the live example project (~3 minutes);
## the attack's shape is in ATTACK_ARGS, e.g. ATTACK_ARGS="--bot-prefixes 8 --bot-burst 4 --bot-interval 1";
## --proven-share S vouches for that share of the legitimate users' blocks before the run (a site
## live for a month; default 0, a new site); codes to unproven prefixes are reported too
attack-sim: install
	$(PY) -m pip install -q -r bench/requirements.txt
	$(PY) -m bench.attack $(ATTACK_ARGS)

clean:
	rm -rf $(VENV) $(VENV6) db.sqlite3 var
