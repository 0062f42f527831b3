# The two commands a fresh clone needs (both do all the set-up first):
#   make serve   run Safe Haven (safehaven serve) on embedded SQLite in the data folder
#                (SAFEHAVEN_VAR_DIR, else ~/.local/share/safehaven; `safehaven where`)
#   make test    ruff, mypy and the whole test suite
#   make lock    re-resolve requirements/lock.txt after a dependency changes in pyproject.toml
.PHONY: serve test setup lock
setup:
	scripts/setup
serve: setup
	.venv/bin/safehaven serve
test:
	scripts/test
lock:
	scripts/lock
