// SPDX-License-Identifier: MIT
// Each data-structure header compiles as C++ (-pedantic-errors) and links;
// the key function types take C++ functions with C linkage.
#include <qsbr/hashmap.h>
#include <qsbr/queue.h>
#include <qsbr/set.h>
#include <qsbr/stack.h>

extern "C" {
static uint64_t hash(uint64_t key, void *) { return key * 3; }
static bool equal(uint64_t a, uint64_t b, void *) { return a == b; }
}

int main()
{
	qsbr_domain *d = qsbr_domain_new(nullptr);
	qsbr_thread *t = qsbr_register(d);
	qsbr_stack *s = qsbr_stack_new(d);
	qsbr_queue *q = qsbr_queue_new(d);
	qsbr_set *o = qsbr_set_new(d);
	qsbr_hashmap *m = qsbr_hashmap_new(d, 16, hash, equal, nullptr);
	int x = 0;
	void *v = nullptr;
	bool bad = false;

	bad |= qsbr_stack_push(s, &x) != 0 || qsbr_stack_pop(s, t, &v) != 0 || v != &x;
	bad |= qsbr_queue_enqueue(q, t, &x) != 0 || qsbr_queue_dequeue(q, t, &v) != 0 || v != &x;
	bad |= qsbr_set_insert(o, t, 1, &x) != 0 || qsbr_set_seek(o, t, 0, nullptr, &v) != 0 || v != &x;
	bad |= qsbr_hashmap_insert(m, t, 1, &x) != 0 || qsbr_hashmap_remove(m, t, 1, &v) != 0 || v != &x;
	bad |= qsbr_hashmap_size(m) != 0;
	bad |= qsbr_stack_delete(s, nullptr, nullptr) != 0 || qsbr_queue_delete(q, nullptr, nullptr) != 0;
	bad |= qsbr_set_delete(o, nullptr, nullptr) != 0 || qsbr_hashmap_delete(m, nullptr, nullptr) != 0;
	qsbr_unregister(t);
	return (bad ? 1 : 0) | qsbr_domain_delete(d);
}
