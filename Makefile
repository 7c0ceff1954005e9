# The two commands of the quick start are `make run` and `make test`; everything they need is
# installed or built by the targets below. Guest crates (plugins) build for wasm32-wasip2 with the
# `plugin` profile into target/wasm32-wasip2/plugin/, where the runtime and the tests find them.

GUESTS := director content-writer email-manager analytics social-media \
          client-onboarding monthly-report follow-ups product-descriptions review-responses low-stock \
          noop hostile wrong-world future-contract
CARGO ?= cargo

.PHONY: run test browser-test plugins toolchain bench lint clean-cache

toolchain:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

plugins: toolchain
	$(CARGO) build --target wasm32-wasip2 --profile plugin $(addprefix -p ,$(GUESTS))

# The main job: the server on embedded SQLite (./data) and the offline AI provider, with the demo
# tenant: the marketing-agency template installed and a campaign under way. The first start prints
# the operator key for the API.
run: plugins
	$(CARGO) build -p missionctl
	$(CARGO) run -q -p missionctl -- serve --demo --data-dir data --listen 127.0.0.1:8080

# From PyPI: croniter is the reference the schedule crate's differential test compares against,
# standardwebhooks the official webhook client, schemathesis the API fuzzer of the attack suite,
# prometheus-client the parser that checks /metrics, aiosmtpd the mail server that receives
# escalation emails; the tests that use them fail without them.
# From Debian: promtool (package prometheus), which lints /metrics.
test: plugins
	@command -v promtool >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus)
	python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore croniter==7.0.0 standardwebhooks==1.1.0 schemathesis==4.32.5 prometheus-client==0.21.1 aiosmtpd==1.4.6 opentelemetry-proto==1.45.2
	$(CARGO) test --workspace
	$(MAKE) browser-test

# The dashboard in a real headless Chromium (Debian's package), driven by playwright-core; the
# screenshots of each page land in tests/browser/artifacts/.
browser-test:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	$(CARGO) build -p missionctl
	node --test --test-concurrency=1 tests/browser/

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
	$(CARGO) bench -p mc-server --bench api
	$(CARGO) bench -p mc-gateway --bench overhead
	$(CARGO) bench -p mc-engine --bench delegation
	$(CARGO) bench -p mc-server --bench template_install
	$(CARGO) bench -p mc-server --bench dashboard
	$(CARGO) bench -p mc-monitor --bench monitor
