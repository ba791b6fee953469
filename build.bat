@echo off
rem build.bat - picolm with MSVC (cl.exe), from a "Developer Command Prompt
rem for VS 2019 16.8+ / VS 2022" (x64 or arm64). Builds build\picolm.exe;
rem "build.bat test" also builds and runs the test programs (from the
rem repository root, next to ..\shared\testdata, as `make test` does).
rem
rem Keep the lists below in step with the Makefile (LIB_SRC, TESTS). No
rem extra libraries: Win32 threads (src\pool.c), Interlocked atomics
rem (src\atomics.h), MapViewOfFile (src\platform.c). On x64 the AVX2
rem kernels get /arch:AVX2 for their file alone (the SSSE3 ones need no
rem flag: MSVC allows their intrinsics); cpu.c picks the level at
rem run time. On arm64 the build uses the generic level (the NEON files are
rem written for GCC/Clang and not tried with MSVC yet).
setlocal enabledelayedexpansion
cd /d "%~dp0"

rem every src\*.c, as the Makefile's wildcard takes them
set LIB_SRC=src\arch.c src\chat.c src\gbnf.c src\gen.c src\gguf.c src\grammar.c src\http.c src\info.c ^
 src\json.c src\json_schema.c src\model.c src\platform.c src\pool.c src\quant.c src\sampler.c src\state.c ^
 src\status.c src\tok_bpe.c src\tokenize_api.c src\tokenizer.c src\toolcall.c src\unicode.c src\unicode_data.c ^
 src\kernels\cpu.c src\kernels\generic.c
rem test_grammar is left out: it times itself with POSIX clock_gettime
set TESTS=test_gguf test_quant test_tokenizer test_model test_kernels
set CFLAGS=/nologo /O2 /std:c11 /W3 /utf-8 /Iinclude /Isrc /D_CRT_SECURE_NO_WARNINGS /DNDEBUG

set OBJ=build\msvc
if not exist %OBJ%\lib mkdir %OBJ%\lib
if not exist %OBJ%\tests mkdir %OBJ%\tests

cl %CFLAGS% /c %LIB_SRC% /Fo%OBJ%\lib\ || goto fail
if /i "%VSCMD_ARG_TGT_ARCH%"=="arm64" goto nox86
cl %CFLAGS% /arch:AVX2 /c src\kernels\x86_avx2.c /Fo%OBJ%\lib\ || goto fail
cl %CFLAGS% /c src\kernels\x86_ssse3.c /Fo%OBJ%\lib\ || goto fail
:nox86
lib /nologo /out:%OBJ%\picolm.lib %OBJ%\lib\*.obj || goto fail
cl %CFLAGS% tools\picolm.c /Fo%OBJ%\ /Fe:build\picolm.exe /link %OBJ%\picolm.lib psapi.lib || goto fail
echo built build\picolm.exe

if /i not "%1"=="test" goto done
set FAILED=0
for %%t in (%TESTS%) do (
    cl %CFLAGS% tests\%%t.c /Fo%OBJ%\tests\ /Fe:%OBJ%\tests\%%t.exe /link %OBJ%\picolm.lib psapi.lib || goto fail
    %OBJ%\tests\%%t.exe || set FAILED=1
)
if "!FAILED!"=="1" (echo SOME TESTS FAILED & exit /b 1)
echo all tests passed

:done
exit /b 0
:fail
echo build failed
exit /b 1
