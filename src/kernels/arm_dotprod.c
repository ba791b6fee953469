/* arm_dotprod.c - the "neon-dotprod" level: arm_neon.c's integer kernels
 * built again with the Armv8.2 dot-product extension (SDOT through
 * vdotq_s32); the Makefile compiles this file with -march=armv8.2-a+dotprod
 * and cpu.c selects it only when the CPU reports the extension. */
#define PL_NEON_DOTPROD 1
#include "arm_neon.c"
