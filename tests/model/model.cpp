// SPDX-License-Identifier: MIT
//
// Model check of the sequence protocol with Relacy (Debian relacy-dev).
// The protocol steps are lib/protocol.h itself, compiled with QSBR_MODEL so
// that lib/atomics.h maps each helper to a Relacy atomic with the same order:
// the model checks the orders the library uses.
//
// Each scenario has readers that load a shared pointer and read the object
// (a Relacy variable), report quiescent states, attach and detach; a retirer
// that unlinks the object, makes a goal, polls (scan, cached rd_seq) and then
// "frees" the object by writing it; and an advancer or a second poller.
// Relacy reports a data race (or the RL_ASSERT fails) if the free can happen
// while a reader may still read the object.
//
// Usage: model [--expect-violation] [SCENARIO|all] [ITERATIONS]
// Exit status 0 when every scenario passed; with --expect-violation (for a
// build with an ordering removed), 0 only when every scenario run FAILED.
#include <relacy/relacy.hpp>

#define QSBR_MODEL 1
extern "C++" {
#include "protocol.h"
}

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

const int LIVE = 1, FREED = -1;

struct object {
	rl::var<int> data;
};

// One domain with NREADERS reader slots in one group of one mask word.
template <int NREADERS>
struct domain {
	au64 wr, rd;
	au64 seq[NREADERS];
	au64 group, mask;
	rl::atomic<object *> ptr;
	object objs[2];

	void init(bool readers_online)
	{
		wr($).store(1, rl::mo_relaxed);
		rd($).store(1, rl::mo_relaxed);
		group($).store(readers_online ? NREADERS : 0, rl::mo_relaxed);
		mask($).store(readers_online ? (1u << NREADERS) - 1 : 0, rl::mo_relaxed);
		for (int i = 0; i < NREADERS; i++)
			seq[i]($).store(readers_online ? 1 : 0, rl::mo_relaxed);
		objs[0].data($) = LIVE;
		objs[1].data($) = LIVE;
		ptr($).store(&objs[0], rl::mo_relaxed);
	}

	// The library's poll: cached minimum, then a scan that skips what the
	// group count and mask say is offline.
	bool poll(uint64_t goal)
	{
		if (!proto_lt(proto_rd(&rd), goal))
			return true;
		if (proto_lt(load_relaxed(&wr), goal))
			return false;
		uint64_t min = proto_scan_begin(&wr);
		if (proto_group_online(&group)) {
			for (uint64_t bits = proto_mask(&mask); bits != 0; bits &= bits - 1) {
				uint64_t s = proto_seq(&seq[__builtin_ctzll(bits)]);

				if (s != 0 && proto_lt(s, min))
					min = s;
			}
		}
		return !proto_lt(proto_scan_end(&rd, min), goal);
	}

	// A reader's read of whatever the pointer holds now.
	void read()
	{
		object *o = ptr($).load(rl::mo_acquire);

		RL_ASSERT(o->data($) == LIVE);
	}

	// Unlink objs[0], make a goal, poll a few times, free on success.
	void retire(bool deferred, int polls)
	{
		object *old = ptr($).exchange(&objs[1], rl::mo_acq_rel);
		uint64_t goal = deferred ? proto_deferred_goal(&wr) : proto_advance(&wr);

		for (int i = 0; i < polls; i++) {
			if (poll(goal)) {
				old->data($) = FREED;
				return;
			}
		}
	}

	void attach(int i) { proto_attach(&seq[i], &wr, &group, &mask, 1u << i); }
	void detach(int i) { proto_detach(&seq[i], &group, &mask, 1u << i); }
};

// b2: a deferred goal reached through a third thread's advance, while the
// reader keeps reading and reporting.  Fails without R4.
struct deferred_third_party : rl::test_suite<deferred_third_party, 3> {
	domain<1> d;
	void before() { d.init(true); }
	void thread(unsigned idx)
	{
		if (idx == 0) {
			for (int i = 0; i < 2; i++) {
				d.read();
				proto_publish(&d.seq[0], &d.wr);
			}
			d.detach(0);
		} else if (idx == 1) {
			d.retire(true, 2);
		} else {
			proto_advance(&d.wr);
		}
	}
};

// b1: the retirer advances itself; two readers.
struct immediate_two_readers : rl::test_suite<immediate_two_readers, 3> {
	domain<2> d;
	void before() { d.init(true); }
	void thread(unsigned idx)
	{
		if (idx < 2) {
			d.read();
			proto_publish(&d.seq[idx], &d.wr);
			d.read();
			d.detach(idx);
		} else {
			d.retire(false, 3);
		}
	}
};

// b3: the reader attaches while a scan may see it offline, with the goal
// deferred and advanced by a third thread.
struct attach_deferred : rl::test_suite<attach_deferred, 3> {
	domain<1> d;
	void before() { d.init(false); }
	void thread(unsigned idx)
	{
		if (idx == 0) {
			d.attach(0);
			d.read();
			d.detach(0);
		} else if (idx == 1) {
			d.retire(true, 2);
		} else {
			proto_advance(&d.wr);
		}
	}
};

// A detach/attach window, and a second poller whose scan raises rd_seq for
// the retirer's cached check.
struct window_and_cache : rl::test_suite<window_and_cache, 3> {
	domain<1> d;
	void before() { d.init(true); }
	void thread(unsigned idx)
	{
		if (idx == 0) {
			d.read();
			d.detach(0);
			d.attach(0);
			d.read();
			proto_publish(&d.seq[0], &d.wr);
		} else if (idx == 1) {
			d.retire(false, 2);
		} else {
			d.poll(load_relaxed(&d.wr));
			d.poll(load_relaxed(&d.wr));
		}
	}
};

template <typename T>
bool run(const char *name, int iterations)
{
	rl::test_params p;

	p.iteration_count = iterations;
	p.search_type = rl::random_scheduler_type;
	std::printf("model: %s, %d random schedules\n", name, iterations);
	std::fflush(stdout);
	bool ok = rl::simulate<T>(p);
	std::printf("model: %s: %s\n", name, ok ? "passed" : "FAILED");
	return ok;
}

} // namespace

int main(int argc, char **argv)
{
	bool expect_violation = argc > 1 && std::strcmp(argv[1], "--expect-violation") == 0;
	if (expect_violation) {
		argc--;
		argv++;
	}
	const char *only = argc > 1 && std::strcmp(argv[1], "all") != 0 ? argv[1] : NULL;
	int iterations = argc > 2 ? std::atoi(argv[2]) : 200000;
	int ran = 0, failed = 0;

#define SCENARIO(T)                                                  \
	if (only == NULL || std::strcmp(only, #T) == 0) {            \
		ran++;                                               \
		failed += !run<T>(#T, iterations);                   \
	}
	SCENARIO(deferred_third_party)
	SCENARIO(immediate_two_readers)
	SCENARIO(attach_deferred)
	SCENARIO(window_and_cache)
	if (ran == 0) {
		std::fprintf(stderr, "model: no scenario named %s\n", only);
		return 2;
	}
	if (expect_violation) {
		std::printf("model: expected a violation in every scenario: %s\n",
			    failed == ran ? "found" : "NOT FOUND");
		std::printf("%d passed, %d failed\n", failed == ran, failed != ran);
		return failed != ran;
	}
	std::printf("%d passed, %d failed\n", ran - failed, failed);
	return failed != 0;
}
