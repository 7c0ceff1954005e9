# The two commands of the quick start are `make run` and `make test`; everything they need is
# installed or built by the targets below. Guest crates (plugins) build for wasm32-wasip2 with the
# `plugin` profile into target/wasm32-wasip2/plugin/, where the runtime and the tests find them.

GUESTS := director content-writer email-manager analytics social-media \
          noop hostile wrong-world future-contract
CARGO ?= cargo

.PHONY: run test plugins toolchain bench lint clean-cache

toolchain:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

plugins: toolchain
	$(CARGO) build --target wasm32-wasip2 --profile plugin $(addprefix -p ,$(GUESTS))

# The main job. For now: the content writer drafts a post from a sample brief, sandboxed, on the
# offline AI provider.
run: plugins
	$(CARGO) run -p missionctl -- run content-writer \
		--input '{"brief": "Spring sale on garden tools, 20% off until Sunday", "voice": "warm and practical"}' \
		--config company="Acme Garden Supplies"

# croniter is the reference the schedule crate's differential test (host/schedule/tests/croniter.rs)
# compares against; the test fails without it.
test: plugins
	python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore croniter==7.0.0 standardwebhooks==1.1.0
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Every benchmark BENCHMARKS.md records (about 20 minutes; each prints its baseline beside it).
bench: plugins
	$(CARGO) bench -p mc-runtime --bench runtime
	$(CARGO) bench -p mc-engine --bench queue
	MC_BENCH_SECS=60 $(CARGO) bench -p mc-engine --bench schedule
	$(CARGO) bench -p mc-engine --bench fairness
	$(CARGO) bench -p missionctl --bench recovery
