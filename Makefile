# The two commands: `make run` and `make test`. Everything else is a helper for them.
BUILD ?= build
LISTEN ?= 127.0.0.1:8080
DATA ?= $(CURDIR)/.nimbus
JOBS ?= $(shell nproc)

.PHONY: run test build deps clean bench stop

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null

build: deps $(BUILD)/build.ninja
	@cmake --build $(BUILD) -j $(JOBS)

# Installs, builds, starts the daemon in the foreground after deploying the examples.
run: build
	@scripts/run.sh $(BUILD) $(LISTEN) $(DATA)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

bench: build
	@bench/run

clean:
	rm -rf $(BUILD)
