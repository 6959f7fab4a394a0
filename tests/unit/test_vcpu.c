/* The core's vCPU loop against a fake backend whose "guest" counts its runs:
 * pause parks every vCPU (no run while paused), resume lets them go on,
 * calls run on the vCPU's own thread, a stop ends parked loops. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/x86/cpu_state.h"
#include "core/exit.h"
#include "core/vm.h"

#define NCPUS 4

struct fake_hv {
	_Atomic uint64_t runs[NCPUS];
	_Atomic uint64_t kicks;
	_Atomic unsigned paused_notes[NCPUS];
	pthread_t bound[NCPUS];
	_Atomic int stop_at_run; /* nonzero: vCPU 0 powers off on that run */
	_Atomic int debug_at_run; /* nonzero: vCPU 1 reports VEXIT_DEBUG on that run */
	pthread_t debug_thread[NCPUS];
	struct vcpu_debug debug[NCPUS];
};

struct fixture {
	struct vm vm;
	struct fake_hv hv;
	pthread_t threads[NCPUS];
	unsigned ids[NCPUS];
	_Atomic int notified;
};

static void fake_bind(void *hv, unsigned cpu)
{
	((struct fake_hv *)hv)->bound[cpu] = pthread_self();
}

/* One "guest entry": a short sleep, then an exit the dispatch resumes. */
static int fake_run(void *hv, unsigned cpu, struct vexit *ex)
{
	struct fake_hv *f = hv;
	usleep(200);
	uint64_t n = atomic_fetch_add(&f->runs[cpu], 1) + 1;
	memset(ex, 0, sizeof(*ex));
	ex->reason = VEXIT_HLT;
	int dat = atomic_load(&f->debug_at_run);
	if (cpu == 1 && dat && n == (uint64_t)dat) {
		ex->reason = VEXIT_DEBUG;
		ex->pc = 0x1234;
	}
	int at = atomic_load(&f->stop_at_run);
	if (cpu == 0 && at && n >= (uint64_t)at) {
		ex->reason = VEXIT_SYSTEM_EVENT;
		ex->event = VEXIT_EVENT_POWEROFF;
	}
	return 0;
}

static void fake_kick(void *hv, unsigned cpu)
{
	(void)cpu;
	atomic_fetch_add(&((struct fake_hv *)hv)->kicks, 1);
}

/* The "registers": rip = 0x1000 + cpu until set; who touched them. */
static uint64_t fake_rip[NCPUS];
static pthread_t state_thread[NCPUS];

static int fake_get_state(void *hv, unsigned cpu, struct vcpu_state *s)
{
	(void)hv;
	state_thread[cpu] = pthread_self();
	memset(s, 0, sizeof(*s));
	s->rip = fake_rip[cpu] ? fake_rip[cpu] : 0x1000 + cpu;
	return 0;
}

static int fake_set_state(void *hv, unsigned cpu, const struct vcpu_state *s)
{
	(void)hv;
	state_thread[cpu] = pthread_self();
	fake_rip[cpu] = s->rip;
	return 0;
}

static int fake_set_debug(void *hv, unsigned cpu, const struct vcpu_debug *d)
{
	struct fake_hv *f = hv;
	f->debug_thread[cpu] = pthread_self();
	f->debug[cpu] = *d;
	return 0;
}

static void fake_paused(void *hv, unsigned cpu)
{
	atomic_fetch_add(&((struct fake_hv *)hv)->paused_notes[cpu], 1);
}

static void on_notify(void *ctx)
{
	atomic_fetch_add(&((struct fixture *)ctx)->notified, 1);
}

struct targ {
	struct vm *vm;
	unsigned cpu;
};

static struct targ targs[NCPUS];

static void *thread_main(void *arg)
{
	struct targ *t = arg;
	vcpu_loop(t->vm, t->cpu);
	return NULL;
}

/* A vCPU thread slower to reach its loop than the caller is to use it. */
static void *slow_thread_main(void *arg)
{
	usleep(100 * 1000);
	return thread_main(arg);
}

static void *(*start_fn)(void *) = thread_main;

static int setup(void **state)
{
	static struct fixture f;
	memset(&f, 0, sizeof(f));
	assert_int_equal(vm_init(&f.vm, NCPUS), 0);
	struct hv_ops hv = { .bind = fake_bind, .run = fake_run, .kick = fake_kick, .paused = fake_paused,
			     .get_state = fake_get_state, .set_state = fake_set_state, .set_debug = fake_set_debug,
			     .hv = &f.hv };
	memset(fake_rip, 0, sizeof(fake_rip));
	assert_int_equal(vcpus_init(&f.vm, &hv), 0);
	f.vm.vcpus.notify = on_notify;
	f.vm.vcpus.notify_ctx = &f;
	vm_mark_running(&f.vm);
	for (unsigned i = 0; i < NCPUS; i++) {
		targs[i] = (struct targ){ &f.vm, i };
		assert_int_equal(pthread_create(&f.threads[i], NULL, start_fn, &targs[i]), 0);
	}
	*state = &f;
	return 0;
}

static int setup_slow(void **state)
{
	start_fn = slow_thread_main;
	int r = setup(state);
	start_fn = thread_main;
	return r;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vm_request_stop(&f->vm, VM_STOP_USER);
	for (unsigned i = 0; i < NCPUS; i++)
		pthread_join(f->threads[i], NULL);
	vm_fini(&f->vm);
	return 0;
}

static uint64_t total_runs(struct fixture *f)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < NCPUS; i++)
		n += atomic_load(&f->hv.runs[i]);
	return n;
}

/* Waits until every vCPU has run at least `min` times. */
static void wait_runs(struct fixture *f, uint64_t min)
{
	for (int tries = 0; tries < 2000; tries++) {
		bool all = true;
		for (unsigned i = 0; i < NCPUS; i++)
			all = all && atomic_load(&f->hv.runs[i]) >= min;
		if (all)
			return;
		usleep(1000);
	}
	fail_msg("vCPUs did not run");
}

static void test_pause_parks_all_and_resume_goes_on(void **state)
{
	struct fixture *f = *state;

	wait_runs(f, 5);
	vm_pause(&f->vm);
	assert_int_equal(vm_run_state(&f->vm), VMS_PAUSED);
	assert_int_equal(f->vm.vcpus.nr_parked, NCPUS);
	uint64_t before = total_runs(f);
	usleep(50 * 1000);
	assert_int_equal(total_runs(f), before); /* no guest entry while paused */
	for (unsigned i = 0; i < NCPUS; i++)
		assert_int_equal(atomic_load(&f->hv.paused_notes[i]), 1); /* kvmclock told once */

	vm_pause(&f->vm); /* pausing a paused VM is harmless */
	assert_int_equal(vm_run_state(&f->vm), VMS_PAUSED);

	vm_resume(&f->vm);
	assert_int_equal(vm_run_state(&f->vm), VMS_RUNNING);
	uint64_t per_cpu[NCPUS];
	for (unsigned i = 0; i < NCPUS; i++)
		per_cpu[i] = atomic_load(&f->hv.runs[i]);
	for (unsigned i = 0; i < NCPUS; i++)
		wait_runs(f, per_cpu[i] + 3);
	vm_resume(&f->vm); /* resuming a running VM is harmless */
	assert_int_equal(vm_run_state(&f->vm), VMS_RUNNING);
}

struct call_rec {
	pthread_t who;
	unsigned cpu;
	int calls;
};

static void record_call(void *arg, unsigned cpu)
{
	struct call_rec *r = arg;
	r->who = pthread_self();
	r->cpu = cpu;
	r->calls++;
}

static void test_run_on_runs_on_the_vcpu_thread(void **state)
{
	struct fixture *f = *state;

	wait_runs(f, 1);
	for (unsigned i = 0; i < NCPUS; i++) {
		struct call_rec r = { 0 };
		assert_int_equal(vcpu_run_on(&f->vm, i, record_call, &r), 0);
		assert_int_equal(r.calls, 1);
		assert_int_equal(r.cpu, i);
		assert_true(pthread_equal(r.who, f->hv.bound[i]));
	}
	/* And while paused: the parked vCPU serves it. */
	vm_pause(&f->vm);
	struct call_rec r = { 0 };
	assert_int_equal(vcpu_run_on(&f->vm, 2, record_call, &r), 0);
	assert_int_equal(r.calls, 1);
	assert_true(pthread_equal(r.who, f->hv.bound[2]));
	assert_int_equal(vm_run_state(&f->vm), VMS_PAUSED);
	vm_resume(&f->vm);
	assert_int_equal(vcpu_run_on(&f->vm, NCPUS, record_call, &r), -1); /* no such vCPU */
}

/* Threads created but not yet in their loops (the VM was just started):
 * once vcpus_wait_started returns, a call is served, not refused. */
static void test_calls_right_after_start(void **state)
{
	struct fixture *f = *state;
	struct call_rec r = { 0 };

	vcpus_wait_started(&f->vm, NCPUS);
	for (unsigned i = 0; i < NCPUS; i++)
		assert_true(f->vm.vcpus.mbox[i].started);
	assert_int_equal(vcpu_run_on(&f->vm, NCPUS - 1, record_call, &r), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.cpu, NCPUS - 1);
}

static void test_state_through_the_mailbox(void **state)
{
	struct fixture *f = *state;
	struct vcpu_state st;

	wait_runs(f, 1);
	assert_int_equal(vcpu_get_state(&f->vm, 3, &st), 0);
	assert_int_equal(st.rip, 0x1003);
	assert_true(pthread_equal(state_thread[3], f->hv.bound[3]));
	st.rip = 0xabc;
	assert_int_equal(vcpu_set_state(&f->vm, 3, &st), 0);
	assert_true(pthread_equal(state_thread[3], f->hv.bound[3]));
	/* Paused: still served, by the parked vCPU itself. */
	vm_pause(&f->vm);
	memset(&st, 0, sizeof(st));
	assert_int_equal(vcpu_get_state(&f->vm, 3, &st), 0);
	assert_int_equal(st.rip, 0xabc);
	assert_int_equal(vcpu_get_state(&f->vm, 1, &st), 0);
	assert_int_equal(st.rip, 0x1001);
	vm_resume(&f->vm);
	assert_int_equal(vcpu_get_state(&f->vm, NCPUS, &st), -1);
}

static void test_stop_ends_parked_loops(void **state)
{
	struct fixture *f = *state;

	wait_runs(f, 1);
	vm_pause(&f->vm);
	int notes = atomic_load(&f->notified);
	vm_request_stop(&f->vm, VM_STOP_USER);
	for (unsigned i = 0; i < NCPUS; i++)
		pthread_join(f->threads[i], NULL);
	assert_true(atomic_load(&f->notified) > notes); /* the control loop was woken */
	assert_int_equal(f->vm.vcpus.nr_loops, 0);
	struct call_rec r = { 0 };
	assert_int_equal(vcpu_run_on(&f->vm, 0, record_call, &r), -1); /* loop gone: refused, no hang */
	vcpus_wait_started(&f->vm, NCPUS); /* ended loops had started: no wait */
	/* Teardown joins again: restart nothing, mark them joined. */
	for (unsigned i = 0; i < NCPUS; i++)
		assert_int_equal(pthread_create(&f->threads[i], NULL, thread_main, &targs[i]), 0);
}

static void test_guest_stop_from_dispatch(void **state)
{
	struct fixture *f = *state;

	atomic_store(&f->hv.stop_at_run, (int)atomic_load(&f->hv.runs[0]) + 5);
	for (unsigned i = 0; i < NCPUS; i++)
		pthread_join(f->threads[i], NULL);
	assert_int_equal(vm_stop_reason(&f->vm), VM_STOP_POWEROFF);
	for (unsigned i = 0; i < NCPUS; i++)
		assert_int_equal(pthread_create(&f->threads[i], NULL, thread_main, &targs[i]), 0);
}

static void test_pause_cost_on_fast_path(void **state)
{
	struct fixture *f = *state;
	/* Nothing outstanding: the per-exit check is one zero load. */
	wait_runs(f, 1);
	assert_int_equal(atomic_load(&f->vm.vcpus.pending), 0);
	vm_pause(&f->vm);
	assert_int_equal(atomic_load(&f->vm.vcpus.pending), 1);
	vm_resume(&f->vm);
	assert_int_equal(atomic_load(&f->vm.vcpus.pending), 0);
	/* Kicks went to every vCPU for the pause. */
	assert_true(atomic_load(&f->hv.kicks) >= NCPUS);
}

/* The gdb stub's hand-off: a debug exit on vCPU 1 asks for the pause from
 * its own thread; every vCPU parks and a vm_pause() from another thread
 * waits for that, without asking twice. */
static _Atomic int debug_seen;
static enum vm_stop on_debug_pause(void *ctx, unsigned cpu, const struct vexit *ex)
{
	struct vm *vm = ctx;
	assert_int_equal(cpu, 1);
	assert_int_equal(ex->pc, 0x1234);
	vcpu_request_pause(vm);
	atomic_fetch_add(&debug_seen, 1);
	return VM_STOP_NONE;
}

static void test_pause_requested_by_a_vcpu(void **state)
{
	struct fixture *f = *state;
	atomic_store(&debug_seen, 0);
	f->vm.on_debug = on_debug_pause;
	f->vm.on_debug_ctx = &f->vm;
	atomic_store(&f->hv.debug_at_run, (int)atomic_load(&f->hv.runs[1]) + 3);
	while (!atomic_load(&debug_seen))
		usleep(100);
	/* Every vCPU parks by itself, before anyone calls vm_pause. */
	for (int i = 0; i < 5000; i++) {
		pthread_mutex_lock(&f->vm.vcpus.lock);
		unsigned parked = f->vm.vcpus.nr_parked;
		pthread_mutex_unlock(&f->vm.vcpus.lock);
		if (parked == NCPUS)
			break;
		usleep(1000);
	}
	assert_int_equal(f->vm.vcpus.nr_parked, NCPUS);
	vm_pause(&f->vm);
	assert_int_equal(vm_run_state(&f->vm), VMS_PAUSED);
	assert_int_equal(atomic_load(&f->vm.vcpus.pending), 1); /* one request, not two */
	uint64_t before = total_runs(f);
	usleep(5000);
	assert_int_equal(total_runs(f), before);
	/* Guest debug is set on the vCPU's own thread. */
	struct vcpu_debug d = { .single_step = true, .hw_bp = true, .dr = { 0x1000 }, .dr7 = 2 };
	assert_int_equal(vcpu_set_debug(&f->vm, 2, &d), 0);
	assert_true(pthread_equal(f->hv.debug_thread[2], f->threads[2]));
	assert_true(f->hv.debug[2].single_step);
	assert_int_equal(f->hv.debug[2].dr[0], 0x1000);
	vm_resume(&f->vm);
	assert_int_equal(atomic_load(&f->vm.vcpus.pending), 0);
	usleep(20 * 1000);
	assert_true(total_runs(f) > before);
	f->vm.on_debug = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pause_parks_all_and_resume_goes_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_on_runs_on_the_vcpu_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_calls_right_after_start, setup_slow, teardown),
		cmocka_unit_test_setup_teardown(test_state_through_the_mailbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_ends_parked_loops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_stop_from_dispatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_cost_on_fast_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_requested_by_a_vcpu, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
