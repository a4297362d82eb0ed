# The two commands: `make demo` and `make test`. Both set up what they need first.
BUILD ?= build
BUILD_TYPE ?= Release
PREFIX ?= /usr/local
JOBS ?= $(shell nproc)
DEMO ?= demo
SCALE ?= 0.1

.PHONY: all setup setup-test configure build test demo install format lint clean

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
