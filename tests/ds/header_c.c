/* SPDX-License-Identifier: MIT */
/* Each data-structure header compiles alone as C11 (-std=c11
 * -pedantic-errors), after <qsbr.h> or before it, and links; integer keys. */
#include <qsbr/hashmap.h>
#include <qsbr/queue.h>
#include <qsbr/set.h>
#include <qsbr/stack.h>
#include <qsbr.h>

#include "header_calls.h"

int main(void)
{
	return header_calls(NULL, NULL);
}
