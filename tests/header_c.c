/* SPDX-License-Identifier: MIT */
/* qsbr.h compiles alone as C11 (-std=c11 -pedantic) and its inline path runs. */
#include <qsbr.h>

int main(void)
{
	qsbr_domain *d = qsbr_domain_new(NULL);
	qsbr_thread *t = qsbr_register(d);

	qsbr_advance(d);
	qsbr_quiescent(t);
	qsbr_quiescent(t);
	qsbr_unregister(t);
	return qsbr_domain_delete(d);
}
