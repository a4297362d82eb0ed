# The two commands: `make demo` and `make test`. Both set up what they need first.
BUILD ?= build
BUILD_TYPE ?= Release
PREFIX ?= /usr/local
JOBS ?= $(shell nproc)
DEMO ?= demo
SCALE ?= 0.1
# make fuzz: seconds per target, which targets, and the build folder (clang, libFuzzer).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= spec guard api odcs pgwire
FUZZ_BUILD ?= build-fuzz
FUZZ_JOBS ?= 2
# make test-asan: the build folder of the sanitized build (gcc, ASan and UBSan).
ASAN_BUILD ?= build-asan
ASAN_ALL ?= 0

.PHONY: all setup setup-test configure build test test-asan fuzz demo install format lint clean

all: build

setup:
	@scripts/setup

setup-test:
	@scripts/setup --test

$(BUILD)/build.ninja:
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null

configure: $(BUILD)/build.ninja

build: setup configure
	@cmake --build $(BUILD) -j $(JOBS)

test: setup-test configure
	@cmake --build $(BUILD) -j $(JOBS)
	@# Both stores: the pg: tests run on a throwaway PostgreSQL that is stopped afterwards.
	@scripts/with-postgres sh -c 'cd $(BUILD) && ctest --output-on-failure -j $(JOBS)'

# The suite again, as `make test` runs it, on a build with AddressSanitizer and
# UndefinedBehaviorSanitizer (CANOPY_SANITIZE, gcc, -O1 -g1) in $(ASAN_BUILD); any sanitizer
# report fails it. Every test on SQLite, and on PostgreSQL the store's own suites; the
# other PostgreSQL twins with ASAN_ALL=1 (scripts/test-asan says why).
test-asan: setup-test
	@ASAN_BUILD=$(ASAN_BUILD) ASAN_ALL=$(ASAN_ALL) BUILD=$(BUILD) JOBS=$(JOBS) scripts/test-asan

# libFuzzer with ASan and UBSan on each target for FUZZ_SECONDS, one after another, on a
# scratch copy of its seed corpus (tests/fuzz/README.md).
fuzz:
	@scripts/setup --fuzz
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_TARGETS="$(FUZZ_TARGETS)" FUZZ_BUILD=$(FUZZ_BUILD) \
	  FUZZ_JOBS=$(FUZZ_JOBS) scripts/fuzz

demo: build
	@scripts/demo $(BUILD)/canopy $(DEMO) $(SCALE)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

format:
	@clang-format -i $$(git ls-files 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h' 'bench/*.cpp')

lint: configure
	@cmake --build $(BUILD) -j $(JOBS)
	@clang-tidy -p $(BUILD) --quiet --extra-arg=-Wno-unknown-warning-option $$(git ls-files 'src/*.cpp')

clean:
	rm -rf $(BUILD)
