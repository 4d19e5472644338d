/* SPDX-License-Identifier: MIT */
/* qsbr.h compiles alone as C11 (-std=c11 -pedantic) and its inline path
 * runs; so does qsbr/shared.h. */
#include <qsbr.h>
#include <qsbr/shared.h>

int main(void)
{
	qsbr_domain *d = qsbr_domain_new(NULL);
	qsbr_thread *t = qsbr_register(d);

	qsbr_advance(d);
	qsbr_quiescent(t);
	qsbr_quiescent(t);
	qsbr_unregister(t);
	if (qsbr_domain_is_shared(d) || qsbr_shared_size(0) != 0)
		return 1;
	return qsbr_domain_delete(d);
}
