# Each target sets up ./.venv on first use (scripts/setup.sh), so a fresh clone needs nothing else.
.PHONY: setup demo test test-all bench-segmap mutate clean
setup:
	./scripts/setup.sh
demo:
	./scripts/demo.sh
test:
	./scripts/test.sh
test-all:
	SEMCOMP_TEST_TIER=all ./scripts/test.sh
bench-segmap: setup
	.venv/bin/semcomp segmap-bench --labels ../shared/data/camvid/valannot --scale 8
mutate:  # mutation testing (slow, not in CI); docs/testing/mutation.md
	./scripts/mutate.sh
clean:
	rm -rf out .pytest_cache build *.egg-info
