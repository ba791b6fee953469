# picolm - build, test and benchmark. `make` builds the library and the CLI
# into build/; `make test` runs every test; `make test SAN=1` the same under
# AddressSanitizer + UndefinedBehaviorSanitizer (clang).
#
# Platform targets (README "Platforms"); cross builds get their own folder:
#   native        this machine with $(CC) (what `make` does)      build/
#   pi            on a 64-bit Raspberry Pi OS: aarch64, NEON       build/
#   pi-arm32      on a Pi Zero / Pi 1: ARMv6 + VFP, hard float     build/
#   riscv         on a RISC-V board (LicheeRV, VisionFive): rv64gc build/
#   static        fully static binaries                            build-static/
#   debug         -O0 -g                                           build-debug/
#   cross-pi      aarch64-linux-gnu-gcc                            build-aarch64/
#   cross-pi32    arm-linux-gnueabihf-gcc, Pi Zero / Pi 1 code     build-armhf/
#   cross-riscv   riscv64-linux-gnu-gcc                            build-riscv64/
#   windows       x86_64-w64-mingw32-gcc (static .exe)             build-windows/
# `make test-cross` runs the tests of the cross builds under qemu-user and
# wine (tests/cross.sh); `make size` prints the stripped CLI sizes; `make
# model` downloads TinyLlama 1.1B Chat Q4_K_M with a SHA-256 check.
# `make` alone builds `all`, whatever rule comes first below.
.DEFAULT_GOAL := all
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

ARCH    := $(shell $(CC) -dumpmachine 2>/dev/null)

# The archiver that goes with a cross compiler (aarch64-linux-gnu-ar ...).
ifeq ($(origin AR),default)
AR      := $(if $(filter %-gcc,$(CC)),$(patsubst %gcc,%ar,$(CC)),ar)
endif

# A cross compiler (`make CC=aarch64-linux-gnu-gcc`) builds into its own
# folder (build-aarch64, build-armhf, build-riscv64, build-windows), never
# over the native build/; BUILD=... on the command line still wins.
TARGET_NAME := $(if $(findstring mingw,$(ARCH)),windows,$(patsubst arm%,armhf,$(firstword $(subst -, ,$(ARCH)))))
HOST_NAME   := $(patsubst arm%,armhf,$(shell uname -m 2>/dev/null))
ifeq ($(origin BUILD),file)
ifneq ($(TARGET_NAME),$(HOST_NAME))
BUILD   := build-$(TARGET_NAME)
endif
endif

# The library's objects are position independent (for libpicolm.so) with
# hidden symbols but for picolm.h's declarations (PL_API); the shared
# library and the static archive export only those (no json_*, gguf_* ...
# to clash with another library's in the same process).
LIB_FLAGS := -fPIC -fvisibility=hidden
OBJCOPY ?= $(if $(filter %-gcc,$(CC)),$(patsubst %gcc,%objcopy,$(CC)),objcopy)
VERSION := $(shell sed -n 's/^\#define PICOLM_VERSION "\(.*\)"/\1/p' include/picolm.h)
SONAME  := libpicolm.so.0
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib

# Windows (mingw-w64): .exe names, Win32 threads (no winpthreads), static
# so the .exe needs no mingw DLLs; PL_INTERLOCKED makes it use the same
# atomics as MSVC (src/atomics.h), so the wine run tests that path too.
ifneq ($(findstring mingw,$(ARCH)),)
EXE     := .exe
CPPFLAGS += -DPL_INTERLOCKED
LDLIBS  := -lm -lpsapi
LDFLAGS += -static
LIB_FLAGS :=
# tests only: test_grammar times itself with POSIX clock_gettime (winpthreads)
$(BUILD)/tests/%.exe: LDLIBS += -lpthread
endif

# ISA-specific kernels: each file with its own flags, picked at run time.
ifneq ($(findstring x86_64,$(ARCH)),)
ISA_SRC := src/kernels/x86_ssse3.c src/kernels/x86_avx2.c src/kernels/x86_avx512.c
ISA_DEFS += -DPL_KERNELS_AVX512
endif
$(BUILD)/src/kernels/x86_ssse3.o: ISA_FLAGS := -mssse3
$(BUILD)/src/kernels/x86_avx2.o: ISA_FLAGS := -mavx2 -mfma -mf16c
AVX512_FLAGS := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512vnni
$(BUILD)/src/kernels/x86_avx512.o: ISA_FLAGS := $(AVX512_FLAGS)
$(BUILD)/src/kernels/x86_avx512.o: src/kernels/x86_avx2.c # it #includes it
# Arm levels, picked up when their files exist: arm_neon.c (NEON is the
# aarch64 baseline: no flags) and arm_dotprod.c (SDOT/UDOT). cpu.c learns
# of them through PL_KERNELS_NEON / PL_KERNELS_DOTPROD.
ifneq ($(findstring aarch64,$(ARCH)),)
ifneq ($(wildcard src/kernels/arm_neon.c),)
ISA_SRC  += src/kernels/arm_neon.c
ISA_DEFS += -DPL_KERNELS_NEON
endif
ifneq ($(wildcard src/kernels/arm_dotprod.c),)
ISA_SRC  += src/kernels/arm_dotprod.c
ISA_DEFS += -DPL_KERNELS_DOTPROD
endif
endif
$(BUILD)/src/kernels/arm_dotprod.o: ISA_FLAGS := -march=armv8.2-a+dotprod
$(BUILD)/src/kernels/arm_dotprod.o: src/kernels/arm_neon.c # it #includes it
$(BUILD)/src/kernels/cpu.o: ISA_FLAGS := $(ISA_DEFS)

# Every src/*.c is part of the library (a new module needs no Makefile edit).
LIB_SRC := $(sort $(wildcard src/*.c)) src/kernels/cpu.c src/kernels/generic.c $(ISA_SRC)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
$(LIB_OBJ): ISA_FLAGS += $(LIB_FLAGS)
# Every object, internal symbols global: what the tools and tests link.
LIB_INT := $(BUILD)/libpicolm-internal.a
TESTS   := test_gguf test_quant test_tokenizer test_model test_kernels test_grammar test_arch test_chat test_json test_http test_gen test_state test_sampler test_toolcall test_pool test_abort
TEST_BIN := $(TESTS:%=$(BUILD)/tests/%$(EXE))

.PHONY: all test clean install run bench bench-kernels bench-mca bench-server memtest fuzz fuzz-bin tsan test-bin native pi pi-arm32 riscv static debug cross-pi cross-pi32 cross-riscv \
        windows test-cross size model
# picolm-gen is a POSIX tool (files, signals): not built for Windows.
# The public libraries: libpicolm.a and (but on Windows or with -static)
# libpicolm.so, which `make install` installs with picolm.h and picolm.pc.
SHARED  := $(if $(EXE)$(findstring -static,$(LDFLAGS)),,$(BUILD)/libpicolm.so)
all: $(BUILD)/picolm$(EXE) $(if $(EXE),,$(BUILD)/picolm-gen $(BUILD)/picolm-server $(BUILD)/libpicolm.a) $(SHARED)
# The test programs and the CLI without running them (cross builds).
test-bin: $(TEST_BIN) $(BUILD)/picolm$(EXE)

$(BUILD)/%.o: %.c $(wildcard include/*.h src/*.h src/kernels/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) $(ISA_FLAGS) -c $< -o $@

$(LIB_INT): $(LIB_OBJ)
	rm -f $@ && $(AR) rcs $@ $^

# One relocatable object with every hidden symbol made local.
$(BUILD)/libpicolm.a: $(LIB_OBJ)
	$(CC) -r -nostdlib -o $(BUILD)/libpicolm-r.o $^
	$(OBJCOPY) --localize-hidden $(BUILD)/libpicolm-r.o $(BUILD)/libpicolm.o
	rm -f $@ $(BUILD)/libpicolm-r.o && $(AR) rcs $@ $(BUILD)/libpicolm.o

$(BUILD)/libpicolm.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) -o $@.$(VERSION) $^ -lm -lpthread
	ln -sf libpicolm.so.$(VERSION) $(BUILD)/$(SONAME) && ln -sf $(SONAME) $@

# make install [PREFIX=/usr/local] [DESTDIR=...]: the programs, the
# libraries, the header and a pkg-config file (picolm.pc).
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BUILD)/picolm $(BUILD)/picolm-server $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(BUILD)/libpicolm.a $(DESTDIR)$(LIBDIR)/
	$(if $(SHARED),install -m 755 $(BUILD)/libpicolm.so.$(VERSION) $(DESTDIR)$(LIBDIR)/ && \
	    ln -sf libpicolm.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) && ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libpicolm.so)
	install -m 644 include/picolm.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@VERSION@|$(VERSION)|' picolm.pc.in \
	    > $(DESTDIR)$(LIBDIR)/pkgconfig/picolm.pc

$(BUILD)/picolm$(EXE): $(BUILD)/tools/picolm.o $(LIB_INT)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/picolm-gen: $(BUILD)/tools/picolm-gen.o $(LIB_INT)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The OpenAI-compatible server (POSIX sockets and threads: not for Windows).
$(BUILD)/picolm-server: $(BUILD)/tools/picolm-server.o $(LIB_INT)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/membw: bench/membw.c
	$(CC) -O2 -o $@ $< -lpthread

$(BUILD)/bench_kernels: bench/kernels.c $(LIB_INT)
	$(CC) $(CPPFLAGS) -O2 -o $@ $^ $(LDLIBS)

# Kernel microbenchmark: GB/s (one token) and GFLOP/s (batch of 32) per type and level.
bench-kernels: $(BUILD)/bench_kernels
	$(BUILD)/bench_kernels

# Arm kernels' throughput by llvm-mca, picolm's next to llama.cpp's (bench/mca.sh).
bench-mca:
	sh bench/mca.sh

# Tokenizer benchmark: load time and encoding MB/s of every test vocabulary
# (bench/tokenize.c; BENCH_MB of text, default 4).
.PHONY: bench-tokenizer
$(BUILD)/bench_tokenize: bench/tokenize.c $(LIB_INT)
	$(CC) $(CPPFLAGS) $(WARN) -O2 -o $@ $^ $(LDLIBS)
bench-tokenizer: $(BUILD)/bench_tokenize
	$(BUILD)/bench_tokenize $(BENCH_MB)

# Benchmarks (never part of the tests): see bench/bench.sh.
bench: $(BUILD)/picolm $(BUILD)/picolm-gen $(BUILD)/membw
	sh bench/bench.sh

# The server under 1, 2, 4 and 8 concurrent streams (bench/server.sh).
bench-server: $(BUILD)/picolm-server $(BUILD)/picolm-gen
	sh bench/server.sh

# The 1.1B model in a 256 MB memory cgroup (needs root; skips otherwise).
memtest: $(BUILD)/picolm $(BUILD)/picolm-gen
	sh bench/memtest.sh

$(BUILD)/tests/%$(EXE): $(BUILD)/tests/%.o $(LIB_INT)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# test_kernels also runs the avx512 level's code with vpdpbusd emulated in
# AVX2 ("avx512-emulated"), so that it is tested on CPUs without AVX-512.
ifneq ($(findstring x86_64,$(ARCH)),)
$(BUILD)/tests/avx512_emu.o: src/kernels/x86_avx512.c src/kernels/x86_avx2.c $(wildcard src/*.h src/kernels/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -mavx2 -mfma -mf16c -DPL_VNNI_EMULATE -c $< -o $@
$(BUILD)/tests/test_kernels$(EXE): $(BUILD)/tests/avx512_emu.o
$(BUILD)/tests/test_kernels$(EXE): LDLIBS := $(LIB_INT) $(LDLIBS)
$(BUILD)/tests/test_kernels.o: CPPFLAGS += -DPL_TEST_AVX512_EMU
endif

# The tests run from the repository root; PICOLM_TESTDATA overrides the data path.
# tests/libso.sh runs `make install` with this make's build and compiler;
# tests/python.sh the Python binding against $(BUILD)/libpicolm.so.
test: $(TEST_BIN) $(BUILD)/picolm $(if $(EXE),,$(BUILD)/picolm-gen $(BUILD)/picolm-server $(BUILD)/libpicolm.a) $(SHARED)
	@fail=0; rm -f $(BUILD)/test.log; \
	 for t in $(TEST_BIN) "sh tests/cli.sh" "sh tests/interactive.sh" "sh tests/json_cli.sh" "sh tests/gen.sh" "sh tests/server.sh" \
	          "sh tests/libso.sh" "sh tests/python.sh"; do \
	     PICOLM=$(BUILD)/picolm PICOLM_SERVER=$(BUILD)/picolm-server BUILD=$(BUILD) \
	     LIBSO_MAKE="$(MAKE) BUILD=$(BUILD) CC=$(CC)$(if $(SAN), SAN=$(SAN))" LIBSO_CC="$(CC) $(CFLAGS) $(LDFLAGS)" \
	     $$t >$(BUILD)/test.out 2>&1 || fail=1; \
	     cat $(BUILD)/test.out; cat $(BUILD)/test.out >>$(BUILD)/test.log; done; \
	 awk '/: [0-9]+ passed, [0-9]+ failed$$/ { p += $$(NF-3); f += $$(NF-1) } \
	      END { printf "total: %d passed, %d failed\n", p, f }' $(BUILD)/test.log; \
	 if [ $$fail != 0 ]; then echo "SOME TESTS FAILED"; exit 1; fi

# The main job on a model reachable offline: greedy text from a test model.
# MODEL=... runs that one; else the reference tiny32k model, or, in a clone
# without the reference data (../shared/testdata, or PICOLM_TESTDATA), a
# random-weight model picolm-gen makes once into build/ (0.2 s, 3.7 MB).
RUN_DATA  = $(or $(PICOLM_TESTDATA),../shared/testdata)
RUN_REF   = $(RUN_DATA)/models/tiny32k-Q4_K_M.gguf
RUN_GEN   = $(BUILD)/run-tiny-Q8_0.gguf
RUN_MODEL = $(or $(MODEL),$(if $(wildcard $(RUN_REF)),$(RUN_REF),$(RUN_GEN)))
run: $(BUILD)/picolm $(if $(filter $(RUN_GEN),$(RUN_MODEL)),$(RUN_GEN))
	@echo "make run: model $(RUN_MODEL)$(if $(filter $(RUN_GEN),$(RUN_MODEL)), (random weights from picolm-gen: no $(RUN_REF)))" >&2
	$(BUILD)/picolm "$(RUN_MODEL)" -p "Once upon a time" -n 32 -t 0

$(RUN_GEN): | $(BUILD)/picolm-gen
	$(BUILD)/picolm-gen $@ --preset tiny --n-vocab 4096 --type Q8_0 --seed 1

# Platform targets: the same rules run again with the platform's compiler,
# flags and build folder. The Pi / RISC-V ones build on the board itself.
native: all

pi:
	@case "$(ARCH)" in aarch64*) ;; *) echo "make pi builds on a 64-bit Pi (this is $(ARCH)); try make cross-pi" >&2; exit 2;; esac
	$(MAKE) all OPT="-O2 -march=armv8-a"

PI32_OPT := -O2 -march=armv6 -mfpu=vfp -mfloat-abi=hard -marm
pi-arm32:
	@case "$(ARCH)" in arm*) ;; *) echo "make pi-arm32 builds on a 32-bit Pi (this is $(ARCH)); try make cross-pi32" >&2; exit 2;; esac
	$(MAKE) all OPT="$(PI32_OPT)"

RV_OPT := -O2 -march=rv64gc -mabi=lp64d
riscv:
	@case "$(ARCH)" in riscv64*) ;; *) echo "make riscv builds on a RISC-V board (this is $(ARCH)); try make cross-riscv" >&2; exit 2;; esac
	$(MAKE) all OPT="$(RV_OPT)"

static:
	$(MAKE) all BUILD=build-static LDFLAGS=-static

debug:
	$(MAKE) all BUILD=build-debug OPT="-O0 -g"

cross-pi:
	$(MAKE) all test-bin CC=aarch64-linux-gnu-gcc OPT="-O2 -march=armv8-a"

cross-pi32:
	$(MAKE) all test-bin CC=arm-linux-gnueabihf-gcc OPT="$(PI32_OPT)"

cross-riscv:
	$(MAKE) all test-bin CC=riscv64-linux-gnu-gcc OPT="$(RV_OPT)"

windows:
	$(MAKE) all test-bin CC=x86_64-w64-mingw32-gcc

# Every cross build's tests under qemu-user / wine (CROSS="aarch64 ..." for some).
test-cross:
	sh tests/cross.sh $(CROSS)

# Stripped size of the CLI of every build folder present.
size: all
	@sh tests/size.sh

model:
	sh install.sh --model --no-build

# Coverage-guided fuzzing (clang libFuzzer + ASan + UBSan): every
# tests/fuzz_*.c is a target (a new file is picked up), built against the
# library compiled by the normal rules into build-fuzz/ (each kernel file
# with its own ISA flags) with coverage, and run FUZZ_TIME seconds with
# its seeds: tests/corpus/<target>/ plus, for fuzz_gguf, the reference
# models' first 64 KiB and two whole small models, so that the forward
# pass runs on fuzzed tensors too (when the test data is there). New inputs go to
# build-fuzz/corpus/<target>/; a crash, leak, hang (-timeout) or promise
# broken stops that target and fails the rule after the others ran.
FUZZ_TIME ?= 60
FUZZ_NAMES := $(patsubst tests/%.c,%,$(sort $(wildcard tests/fuzz_*.c)))
FUZZ_SAN := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_DATA = $${PICOLM_TESTDATA:-../shared/testdata}
fuzz-bin:
	@$(MAKE) -s BUILD=build-fuzz CC=clang CFLAGS="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" build-fuzz/libpicolm-internal.a
	@for t in $(FUZZ_NAMES); do \
	    clang $(CPPFLAGS) $(WARN) $(FUZZ_SAN) -fsanitize=fuzzer tests/$$t.c build-fuzz/libpicolm-internal.a \
	        -o build-fuzz/$$t -lm -lpthread || exit 1; done
fuzz: fuzz-bin
	@fail=""; for t in $(FUZZ_NAMES); do \
	    mkdir -p build-fuzz/corpus/$$t; \
	    if [ $$t = fuzz_gguf ]; then \
	        for f in $(FUZZ_DATA)/models/tiny512-*.gguf $(FUZZ_DATA)/vocab/*.gguf; do \
	            [ -f "$$f" ] && head -c 65536 "$$f" > build-fuzz/corpus/$$t/$$(basename $$f).head; done; \
	        for f in $(FUZZ_DATA)/models/tiny512-Q2_K.gguf $(FUZZ_DATA)/models/tiny512-Q4_0.gguf; do \
	            [ -f "$$f" ] && cp -f "$$f" build-fuzz/corpus/$$t/; done; \
	        opts=-max_len=1100000; \
	    else opts=; fi; \
	    echo "== $$t ($(FUZZ_TIME) s)"; \
	    build-fuzz/$$t -max_total_time=$(FUZZ_TIME) -timeout=30 -rss_limit_mb=2048 -print_final_stats=0 $$opts -artifact_prefix=build-fuzz/$$t- \
	        build-fuzz/corpus/$$t $$( [ -d tests/corpus/$$t ] && echo tests/corpus/$$t) >build-fuzz/$$t.log 2>&1 \
	        || { fail="$$fail $$t"; tail -n 60 build-fuzz/$$t.log; }; \
	    grep -E "^#[0-9]+.*(DONE|pulse)" build-fuzz/$$t.log | tail -n 1; grep "skipped" build-fuzz/$$t.log || true; \
	done; \
	if [ -n "$$fail" ]; then echo "fuzz: FAILED:$$fail (logs and crash inputs: build-fuzz/<target>.log, build-fuzz/<target>-crash-*)"; exit 1; fi; \
	echo "fuzz: $(words $(FUZZ_NAMES)) targets, no crash"

# ThreadSanitizer over the tests that run the thread pool (contexts with
# 1 and 2 threads): test_model, and test_state when present; build-tsan/.
TSAN_TESTS := test_pool test_model $(if $(wildcard tests/test_state.c),test_state)
# The server too: its engine, connection threads and the pool, driven by
# tests/server.sh (a shorter load run).
tsan:
	@$(MAKE) -s BUILD=build-tsan CC=clang CFLAGS="-g -O1 -fsanitize=thread" LDFLAGS="-fsanitize=thread" \
	    $(TSAN_TESTS:%=build-tsan/tests/%) build-tsan/picolm-server
	@fail=0; for t in $(TSAN_TESTS); do \
	    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" build-tsan/tests/$$t >build-tsan/$$t.log 2>&1 || fail=1; \
	    tail -n 1 build-tsan/$$t.log; grep -m1 -A30 "WARNING: ThreadSanitizer" build-tsan/$$t.log || true; done; \
	 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" PICOLM_SERVER=build-tsan/picolm-server LOAD_N=60 \
	     sh tests/server.sh >build-tsan/server.log 2>&1 || fail=1; \
	 tail -n 1 build-tsan/server.log; grep -m1 -A30 "WARNING: ThreadSanitizer" build-tsan/server.log || true; \
	 if [ $$fail != 0 ]; then echo "tsan: FAILED (build-tsan/*.log)"; exit 1; fi

clean:
	rm -rf build build-san build-fuzz build-tsan build-static build-debug build-aarch64 build-armhf build-riscv64 build-windows
