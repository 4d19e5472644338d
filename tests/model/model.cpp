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
// build with an ordering removed by a QSBR_MODEL_* macro of protocol.h), 0
// only when every scenario run FAILED.  Built with -DMODEL_ONLY=SCENARIO,
// the program holds only that scenario.  docs/design.md section 8 lists the
// scenarios, the weakened builds and what catches each.
// Built with RL_DO_ASSERT=1 (meson.build), so that Relacy stops on an order
// it cannot model (a compare_exchange failure order other than relaxed after
// a release success order) instead of weakening it without a word.
#include <relacy/relacy.hpp>

#define QSBR_MODEL 1
extern "C++" {
#include "protocol.h"
}

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

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

	// wr_seq starts at wr0 and rd_seq at rd0 (rd0 < wr0: an advance no
	// scan has caught up with yet); online readers at seq wr0.
	void init(bool readers_online, uint64_t wr0 = 1, uint64_t rd0 = 1)
	{
		wr($).store(wr0, rl::mo_relaxed);
		rd($).store(rd0, rl::mo_relaxed);
		group($).store(readers_online ? NREADERS : 0, rl::mo_relaxed);
		mask($).store(readers_online ? (1u << NREADERS) - 1 : 0, rl::mo_relaxed);
		for (int i = 0; i < NREADERS; i++)
			seq[i]($).store(readers_online ? wr0 : 0, rl::mo_relaxed);
		objs[0].data($) = LIVE;
		objs[1].data($) = LIVE;
		ptr($).store(&objs[0], rl::mo_relaxed);
	}

	// The library's scan (lib/grace.c): skips what the group count and
	// mask say is offline; returns what proto_scan_end() returns.
	uint64_t scan()
	{
		uint64_t min = proto_scan_begin(&wr);

		if (proto_group_online(&group)) {
			for (uint64_t bits = proto_mask(&mask); bits != 0; bits &= bits - 1) {
				uint64_t s = proto_seq(&seq[__builtin_ctzll(bits)]);

				if (s != 0 && proto_lt(s, min))
					min = s;
			}
		}
		return proto_scan_end(&rd, min);
	}

	// The library's poll: cached minimum, relaxed check of wr_seq, scan.
	bool poll(uint64_t goal)
	{
		if (!proto_lt(proto_rd(&rd), goal))
			return true;
		if (proto_lt(load_relaxed(&wr), goal))
			return false;
		return !proto_lt(scan(), goal);
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

	// qsbr_synchronize's goal: deferred (R4), then advanced to by us or by
	// a concurrent caller; poll, free on success.
	void retire_synchronize(int polls)
	{
		object *old = ptr($).exchange(&objs[1], rl::mo_acq_rel);
		uint64_t goal = proto_deferred_goal(&wr);

		proto_advance_to(&wr, goal);
		for (int i = 0; i < polls; i++) {
			if (poll(goal)) {
				old->data($) = FREED;
				return;
			}
		}
	}

	// Unlink objs[0], advance, and free once the cached rd_seq (raised by
	// somebody else's scan) reaches the goal; never scan.
	void retire_on_cache(int checks)
	{
		object *old = ptr($).exchange(&objs[1], rl::mo_acq_rel);
		uint64_t goal = proto_advance(&wr);

		for (int i = 0; i < checks; i++) {
			if (!proto_lt(proto_rd(&rd), goal)) {
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

// b3 with the scan made by a third thread, which learns of the unlink only
// through its load of wr_seq (R5), while the reader attaches; the retirer
// frees on the cached rd_seq alone.  wr_seq starts at 3, rd_seq at 1 (an
// advance no scan has caught up with), and the poller waits for that older
// goal, 3: the poll's relaxed check of wr_seq may then read 3, so only R5's
// own load can carry the retirer's advance to 5 into the scan.  Fails with
// R5's load after its fence (see design.md section 8 for why the poller's
// goal must be older than the retirer's).
struct third_poller_attach : rl::test_suite<third_poller_attach, 3> {
	domain<1> d;
	void before() { d.init(false, 3, 1); }
	void thread(unsigned idx)
	{
		if (idx == 0) {
			d.attach(0);
			d.read();
			d.detach(0);
		} else if (idx == 1) {
			d.retire_on_cache(3);
		} else {
			d.poll(3);
		}
	}
};

// The same with the poller waiting for the retirer's own goal (wr_seq from
// 1 to 3).  The poll's relaxed check must then read the retirer's advance
// before the scan's fence, and that fence (an acquire fence too) orders the
// unlink before the scan whatever R5's load does: this scenario cannot see
// R5's load moved after the fence.
struct third_poller_same_goal : rl::test_suite<third_poller_same_goal, 3> {
	domain<1> d;
	void before() { d.init(false); }
	void thread(unsigned idx)
	{
		if (idx == 0) {
			d.attach(0);
			d.read();
			d.detach(0);
		} else if (idx == 1) {
			d.retire_on_cache(3);
		} else {
			d.poll(3);
			d.poll(3);
		}
	}
};

// Two scanners: the retirer's scan sees the reader at 3 and its CAS of
// rd_seq fails against the other poller's 5, which proto_scan_end() returns
// and the retirer frees on.  Needs the acquire of the failing CAS (R5);
// fails with a relaxed failure order, which is what Relacy itself makes of
// compare_exchange(release, acquire) (lib/atomics.h emulates the acquire).
struct cas_failure : rl::test_suite<cas_failure, 3> {
	domain<1> d;
	void before() { d.init(true, 3, 1); }
	void thread(unsigned idx)
	{
		if (idx == 0) {
			d.read();
			proto_publish(&d.seq[0], &d.wr);
			d.read();
			d.detach(0);
		} else if (idx == 1) {
			d.retire(false, 2);
		} else {
			d.poll(5);
			d.poll(5);
		}
	}
};

// qsbr_synchronize: the retirer makes a deferred goal (R4) and advances to
// it with proto_advance_to(), racing another synchronize caller that does
// the same with nothing unlinked; whichever CAS wins makes the advance.
struct synchronize_shared : rl::test_suite<synchronize_shared, 3> {
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
			d.retire_synchronize(2);
		} else {
			proto_advance_to(&d.wr, proto_deferred_goal(&d.wr));
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

// -DMODEL_ONLY=scenario compiles only that scenario's simulation (the
// weakened builds: one scenario each, a fraction of the compile time).
#ifdef MODEL_ONLY
#define COMPILED(T) std::is_same<T, MODEL_ONLY>
#else
#define COMPILED(T) std::true_type
#endif

template <typename T>
bool run_if(std::true_type, const char *name, int iterations)
{
	return run<T>(name, iterations);
}

template <typename T>
bool run_if(std::false_type, const char *, int)
{
	return true;
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

#define SCENARIO(T)                                                          \
	if (COMPILED(T)::value && (only == NULL || std::strcmp(only, #T) == 0)) { \
		ran++;                                                       \
		failed += !run_if<T>(COMPILED(T)(), #T, iterations);         \
	}
	SCENARIO(deferred_third_party)
	SCENARIO(immediate_two_readers)
	SCENARIO(attach_deferred)
	SCENARIO(window_and_cache)
	SCENARIO(third_poller_attach)
	SCENARIO(third_poller_same_goal)
	SCENARIO(cas_failure)
	SCENARIO(synchronize_shared)
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
