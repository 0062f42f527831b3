# The two commands a fresh clone needs (both do all the set-up first):
#   make serve   run Safe Haven (safehaven serve) on embedded SQLite in the data folder
#                (SAFEHAVEN_VAR_DIR, else ~/.local/share/safehaven; `safehaven where`)
#   make test    ruff, mypy and the whole test suite
.PHONY: serve test setup
setup:
	scripts/setup
serve: setup
	.venv/bin/safehaven serve
test:
	scripts/test
