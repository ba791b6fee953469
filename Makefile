# picolm - build, test and benchmark. `make` builds the library and the CLI
# into build/; `make test` runs every test; `make test SAN=1` the same under
# AddressSanitizer + UndefinedBehaviorSanitizer (clang).
CC      ?= cc
ifeq ($(origin CC),default)
CC      := cc
endif
OPT     ?= -O2
CFLAGS  ?= $(OPT)
WARN    := -std=c11 -Wall -Wextra -Wshadow -Wno-unused-parameter
CPPFLAGS += -Iinclude -Isrc -D_POSIX_C_SOURCE=200809L
LDLIBS  += -lm -lpthread
BUILD   ?= build

ifeq ($(SAN),1)
CC      := clang
BUILD   := build-san
CFLAGS  := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

# ISA-specific kernels: each file with its own flags, picked at run time.
ARCH    := $(shell $(CC) -dumpmachine 2>/dev/null)
ifneq ($(findstring x86_64,$(ARCH)),)
ISA_SRC := src/kernels/x86_avx2.c
endif
$(BUILD)/src/kernels/x86_avx2.o: ISA_FLAGS := -mavx2 -mfma -mf16c

LIB_SRC := src/gguf.c src/quant.c src/tokenizer.c src/model.c src/state.c src/chat.c src/sampler.c src/pool.c src/platform.c \
           src/kernels/cpu.c src/kernels/generic.c $(ISA_SRC)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
TESTS   := test_gguf test_quant test_tokenizer test_model test_kernels
TEST_BIN := $(TESTS:%=$(BUILD)/tests/%)

.PHONY: all test clean run bench
all: $(BUILD)/picolm $(BUILD)/picolm-gen

$(BUILD)/%.o: %.c $(wildcard include/*.h src/*.h src/kernels/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) $(ISA_FLAGS) -c $< -o $@

$(BUILD)/libpicolm.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/picolm: $(BUILD)/tools/picolm.o $(BUILD)/libpicolm.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/picolm-gen: $(BUILD)/tools/picolm-gen.o $(BUILD)/libpicolm.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/membw: bench/membw.c
	$(CC) -O2 -o $@ $< -lpthread

# Benchmarks (never part of the tests): see bench/bench.sh.
bench: $(BUILD)/picolm $(BUILD)/picolm-gen $(BUILD)/membw
	sh bench/bench.sh

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/libpicolm.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The tests run from the repository root; PICOLM_TESTDATA overrides the data path.
test: $(TEST_BIN) $(BUILD)/picolm
	@fail=0; for t in $(TEST_BIN); do PICOLM=$(BUILD)/picolm $$t || fail=1; done; \
	 PICOLM=$(BUILD)/picolm sh tests/cli.sh || fail=1; \
	 if [ $$fail = 0 ]; then echo "all tests passed"; else echo "SOME TESTS FAILED"; exit 1; fi

# The main job on a model reachable offline: greedy text from a test model.
run: $(BUILD)/picolm
	$(BUILD)/picolm $${MODEL:-../shared/testdata/models/tiny32k-Q4_K_M.gguf} -p "Once upon a time" -n 32 -t 0

clean:
	rm -rf build build-san
