// SPDX-License-Identifier: MIT
// qsbr.h compiles alone as C++ (also inside extern "C" { }, with
// -DEXTERN_C_INCLUDE) and its inline path runs; so does qsbr/shared.h.
#ifdef EXTERN_C_INCLUDE
extern "C" {
#include <qsbr.h>
#include <qsbr/shared.h>
}
#else
#include <qsbr.h>
#include <qsbr/shared.h>
#endif

int main()
{
	qsbr_domain *d = qsbr_domain_new(nullptr);
	qsbr_thread *t = qsbr_register(d);

	qsbr_advance(d);
	qsbr_quiescent(t);
	qsbr_quiescent(t);
	bool ok = qsbr_seq_lt(UINT64_MAX, 1) && !qsbr_domain_is_shared(d) &&
		  qsbr_shared_size(1) % 64 == 0;
	qsbr_unregister(t);
	return qsbr_domain_delete(d) != 0 || !ok;
}
