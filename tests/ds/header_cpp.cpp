// SPDX-License-Identifier: MIT
// Each data-structure header compiles as C++ (-pedantic-errors) and links;
// the key function types take C++ functions with C linkage.
#include <qsbr/hashmap.h>
#include <qsbr/queue.h>
#include <qsbr/set.h>
#include <qsbr/stack.h>

#include "header_calls.h"

extern "C" {
static uint64_t hash(uint64_t key, void *) { return key * 3; }
static bool equal(uint64_t a, uint64_t b, void *) { return a == b; }
}

int main()
{
	return header_calls(hash, equal);
}
