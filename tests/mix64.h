/* SPDX-License-Identifier: MIT */
/* A 64-bit mixing function (splitmix's finaliser constants), for the
 * stress programs' seeds and random streams. */
#ifndef QSBR_TEST_MIX64_H
#define QSBR_TEST_MIX64_H

#include <stdint.h>

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

#endif /* QSBR_TEST_MIX64_H */
