# Set-up on a fresh Debian 12 machine, as root:
#   make demo   install everything, bring up the two-node lab, replicate data/smbvol to dst
#               as in the guide, open ovios-shell on src
#   make test   install everything plus the test tools, run the static checks and the whole
#               test suite: both labs, each of which fails its tests with the reason when it
#               cannot start (never skips them)
#   make test-unit      only the tests that need no lab, for machines that cannot host the labs
#                       (no root needed: a venv and pip)
#   make test-fuse      only the tests that need no VM (the zfs-fuse lab and no lab)
#   make test-openzfs   only the tests on the OpenZFS 2.x QEMU lab (builds its image once, 7-11 min)

# Debian's own Python (package python3-venv), never whichever python3 comes first on PATH
PYTHON  ?= /usr/bin/python3
VENV    := $(CURDIR)/.venv
PY      := $(VENV)/bin/python
DEBS    := zfs-fuse openssh-server openssh-client cron iproute2 util-linux procps pv python3-venv logrotate
DEBS_OPENZFS := qemu-system-x86 qemu-utils debootstrap e2fsprogs
# samba: testparm and pdbedit read restore's Samba files back (tests/fuse_lab/test_restore_samba.py);
# shellcheck: make check runs it over the shell scripts
DEBS_TEST := samba shellcheck
PYTEST_ARGS ?=
OPENZFS_LOG := $(CURDIR)/.openzfs-tests.log

.PHONY: demo test test-unit test-fuse test-openzfs check test-tools python-test-tools install debs lab-down clean

demo: install
	$(VENV)/bin/ovios-lab demo

# The two labs' tests run side by side (the VMs mostly wait on emulation; the zfs-fuse
# tests are built to stand a busy machine): the OpenZFS tier's output follows the rest's.
# Every status but 0 fails, pytest's 5 (no test selected) included: a tier that ran
# nothing is not a tier that passed.  The static checks come first: they take seconds.
test: install test-tools check
	$(MAKE) debs DEBS="$(DEBS_OPENZFS)"
	@$(PY) -m pytest -p no:cacheprovider -m openzfs $(PYTEST_ARGS) > $(OPENZFS_LOG) 2>&1 & vms=$$!; \
	$(PY) -m pytest -m 'not openzfs' $(PYTEST_ARGS); rest=$$?; \
	wait $$vms; openzfs=$$?; \
	echo "=== the OpenZFS lab's tests (pytest -m openzfs) ==="; cat $(OPENZFS_LOG); \
	echo "=== exit statuses: without the VMs $$rest, OpenZFS lab $$openzfs ==="; \
	[ $$rest -eq 0 ] && [ $$openzfs -eq 0 ]

test-unit: $(VENV)/.installed python-test-tools
	$(PY) -m pytest -m 'not lab and not openzfs' $(PYTEST_ARGS)

# The static checks: ruff (its rules in pyproject.toml) over the package, tests and benchmarks;
# mypy over the files pyproject.toml names; shellcheck over the shell scripts.  No root, no
# lab; shellcheck is a Debian package (test-tools installs it, as root): without it the check
# fails rather than passing with a part left out.
SHELL_SCRIPTS := $(wildcard lab/ovios_lab/scripts/*.sh) .ci/run
check: $(VENV)/.installed python-test-tools
	$(PY) -m ruff check .
	$(PY) -m mypy
	@command -v shellcheck >/dev/null || { echo "shellcheck is missing: make test-tools (as root) or apt-get install shellcheck" >&2; exit 1; }
	shellcheck --external-sources --source-path=SCRIPTDIR $(SHELL_SCRIPTS)

test-fuse: install test-tools
	$(PY) -m pytest -m 'not openzfs' $(PYTEST_ARGS)

test-openzfs: install test-tools
	$(MAKE) debs DEBS="$(DEBS_OPENZFS)"
	$(PY) -m pytest -m openzfs $(PYTEST_ARGS)

test-tools: python-test-tools
	$(MAKE) debs DEBS="$(DEBS_TEST)"

python-test-tools: $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'

install: debs $(VENV)/.installed
	ln -sf $(VENV)/bin/ovios-shell /usr/bin/ovios-shell
	install -D -m 0644 completions/ovios-shell.bash /etc/bash_completion.d/ovios-shell
	install -D -m 0644 logrotate/ovios-shell /etc/logrotate.d/ovios-shell

debs:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The product, and beside it the labs (lab/: a project of their own, never in the product's wheel)
$(VENV)/.installed: setup.cfg pyproject.toml lab/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	$(PY) -m pip install --quiet --disable-pip-version-check -e ./lab
	touch $@

lab-down:
	$(VENV)/bin/ovios-lab down

clean: lab-down
	rm -rf $(VENV) build *.egg-info
