/* The vCPU loop and its mailbox. The fast path is one relaxed load of
 * `pending` per exit; everything else (parking, calls from other threads)
 * runs under one lock that only the slow path takes. */
#include "core/vcpu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/exit.h"
#include "core/vm.h"

int vcpus_init(struct vm *vm, const struct hv_ops *hv)
{
	struct vcpus *vs = &vm->vcpus;

	vs->hv = *hv;
	vs->n = vm->ncpus;
	vs->mbox = calloc(vs->n, sizeof(*vs->mbox));
	if (!vs->mbox)
		return -ENOMEM;
	pthread_mutex_init(&vs->lock, NULL);
	pthread_cond_init(&vs->cond, NULL);
	atomic_init(&vs->state, VMS_NOT_STARTED);
	return 0;
}

void vcpus_fini(struct vm *vm)
{
	struct vcpus *vs = &vm->vcpus;

	if (!vs->mbox)
		return;
	pthread_cond_destroy(&vs->cond);
	pthread_mutex_destroy(&vs->lock);
	free(vs->mbox);
	vs->mbox = NULL;
}

enum vm_run_state vm_run_state(struct vm *vm)
{
	return (enum vm_run_state)atomic_load(&vm->vcpus.state);
}

void vm_mark_running(struct vm *vm)
{
	atomic_store(&vm->vcpus.state, VMS_RUNNING);
}

static bool stopping(struct vm *vm)
{
	return vm_stop_reason(vm) != VM_STOP_NONE;
}

/* Runs this vCPU's pending call, if any. Under vs->lock. */
static void serve_call(struct vcpus *vs, unsigned cpu)
{
	struct vcpu_mbox *mb = &vs->mbox[cpu];

	if (!mb->fn)
		return;
	mb->fn(mb->arg, cpu);
	mb->fn = NULL;
	mb->calls_done++;
	atomic_fetch_sub(&vs->pending, 1);
	pthread_cond_broadcast(&vs->cond);
}

/* The slow path between two guest entries: calls, then parking for a pause
 * (serving calls while parked) until resumed or stopped. */
static void serve_mailbox(struct vm *vm, unsigned cpu)
{
	struct vcpus *vs = &vm->vcpus;
	struct vcpu_mbox *mb = &vs->mbox[cpu];
	bool told_paused = false;

	pthread_mutex_lock(&vs->lock);
	serve_call(vs, cpu);
	while (atomic_load(&vs->pause_req) && !stopping(vm)) {
		if (!mb->parked) {
			mb->parked = true;
			vs->nr_parked++;
			pthread_cond_broadcast(&vs->cond);
		}
		if (!told_paused && vs->hv.paused) {
			vs->hv.paused(vs->hv.hv, cpu);
			told_paused = true;
		}
		pthread_cond_wait(&vs->cond, &vs->lock);
		serve_call(vs, cpu);
	}
	if (mb->parked) {
		mb->parked = false;
		vs->nr_parked--;
		pthread_cond_broadcast(&vs->cond);
	}
	pthread_mutex_unlock(&vs->lock);
}

void vcpu_loop(struct vm *vm, unsigned cpu)
{
	struct vcpus *vs = &vm->vcpus;
	struct vexit ex;

	pthread_mutex_lock(&vs->lock);
	vs->mbox[cpu].running = true;
	vs->mbox[cpu].started = true;
	vs->nr_loops++;
	pthread_cond_broadcast(&vs->cond);
	pthread_mutex_unlock(&vs->lock);
	if (vs->hv.bind)
		vs->hv.bind(vs->hv.hv, cpu);

	while (!stopping(vm)) {
		if (atomic_load_explicit(&vs->pending, memory_order_acquire)) {
			serve_mailbox(vm, cpu);
			if (stopping(vm))
				break;
		}
		if (vs->hv.run(vs->hv.hv, cpu, &ex) < 0) {
			vm_request_stop(vm, VM_STOP_ERROR);
			break;
		}
		enum vm_stop why = exit_dispatch(vm, cpu, &ex);
		if (why != VM_STOP_NONE) {
			if (why == VM_STOP_CRASH && vs->hv.report_crash)
				vs->hv.report_crash(vs->hv.hv, cpu, &ex);
			vm_request_stop(vm, why);
		}
	}

	pthread_mutex_lock(&vs->lock);
	serve_call(vs, cpu); /* a caller waiting on us is not left hanging */
	vs->mbox[cpu].running = false;
	vs->nr_loops--;
	pthread_cond_broadcast(&vs->cond);
	pthread_mutex_unlock(&vs->lock);
}

void vcpus_wait_started(struct vm *vm, unsigned n)
{
	struct vcpus *vs = &vm->vcpus;

	pthread_mutex_lock(&vs->lock);
	for (unsigned i = 0; i < n && i < vs->n; i++)
		while (!vs->mbox[i].started)
			pthread_cond_wait(&vs->cond, &vs->lock);
	pthread_mutex_unlock(&vs->lock);
}

static void kick_all(struct vcpus *vs)
{
	for (unsigned i = 0; i < vs->n; i++)
		vs->hv.kick(vs->hv.hv, i);
}

void vm_pause(struct vm *vm)
{
	struct vcpus *vs = &vm->vcpus;

	pthread_mutex_lock(&vs->lock);
	if (atomic_load(&vs->state) != VMS_RUNNING) {
		pthread_mutex_unlock(&vs->lock);
		return;
	}
	/* A vCPU may have asked already (vcpu_request_pause): one request. */
	if (!atomic_load(&vs->pause_req)) {
		atomic_store(&vs->pause_req, true);
		atomic_fetch_add(&vs->pending, 1);
	}
	pthread_mutex_unlock(&vs->lock);
	/* After pause_req is visible: a vCPU about to enter the guest sees
	 * it, or the kick brings it straight back out. */
	kick_all(vs);
	pthread_mutex_lock(&vs->lock);
	while (vs->nr_parked < vs->nr_loops && !stopping(vm))
		pthread_cond_wait(&vs->cond, &vs->lock);
	atomic_store(&vs->state, VMS_PAUSED);
	pthread_mutex_unlock(&vs->lock);
}

void vcpu_request_pause(struct vm *vm)
{
	struct vcpus *vs = &vm->vcpus;

	pthread_mutex_lock(&vs->lock);
	bool ask = atomic_load(&vs->state) == VMS_RUNNING && !atomic_load(&vs->pause_req);
	if (ask) {
		atomic_store(&vs->pause_req, true);
		atomic_fetch_add(&vs->pending, 1);
	}
	pthread_mutex_unlock(&vs->lock);
	/* The caller's own kick only costs it one VEXIT_INTR after resume. */
	if (ask)
		kick_all(vs);
}

void vm_resume(struct vm *vm)
{
	struct vcpus *vs = &vm->vcpus;

	pthread_mutex_lock(&vs->lock);
	if (atomic_load(&vs->state) == VMS_PAUSED) {
		atomic_store(&vs->pause_req, false);
		atomic_fetch_sub(&vs->pending, 1);
		atomic_store(&vs->state, VMS_RUNNING);
		pthread_cond_broadcast(&vs->cond);
	}
	pthread_mutex_unlock(&vs->lock);
}

int vcpu_run_on(struct vm *vm, unsigned cpu, void (*fn)(void *arg, unsigned cpu), void *arg)
{
	struct vcpus *vs = &vm->vcpus;

	if (cpu >= vs->n)
		return -1;
	struct vcpu_mbox *mb = &vs->mbox[cpu];
	pthread_mutex_lock(&vs->lock);
	while (mb->fn && mb->running)
		pthread_cond_wait(&vs->cond, &vs->lock);
	if (!mb->running) {
		pthread_mutex_unlock(&vs->lock);
		return -1;
	}
	uint64_t ticket = mb->calls_done + 1;
	mb->fn = fn;
	mb->arg = arg;
	atomic_fetch_add(&vs->pending, 1);
	pthread_cond_broadcast(&vs->cond); /* a parked vCPU serves it at once */
	pthread_mutex_unlock(&vs->lock);
	vs->hv.kick(vs->hv.hv, cpu);
	pthread_mutex_lock(&vs->lock);
	while (mb->calls_done < ticket && mb->running)
		pthread_cond_wait(&vs->cond, &vs->lock);
	int r = mb->calls_done >= ticket ? 0 : -1;
	pthread_mutex_unlock(&vs->lock);
	return r;
}

void vcpus_wake_all(struct vm *vm)
{
	struct vcpus *vs = &vm->vcpus;

	if (!vs->mbox)
		return;
	kick_all(vs);
	pthread_mutex_lock(&vs->lock);
	pthread_cond_broadcast(&vs->cond);
	pthread_mutex_unlock(&vs->lock);
	if (vs->notify)
		vs->notify(vs->notify_ctx);
}

struct state_call {
	struct vcpus *vs;
	struct vcpu_state *get;
	const struct vcpu_state *set;
	int result;
};

static void state_on_vcpu(void *arg, unsigned cpu)
{
	struct state_call *c = arg;
	const struct hv_ops *hv = &c->vs->hv;

	if (c->get)
		c->result = hv->get_state ? hv->get_state(hv->hv, cpu, c->get) : -ENOSYS;
	else
		c->result = hv->set_state ? hv->set_state(hv->hv, cpu, c->set) : -ENOSYS;
}

int vcpu_get_state(struct vm *vm, unsigned cpu, struct vcpu_state *s)
{
	struct state_call c = { .vs = &vm->vcpus, .get = s };
	if (vcpu_run_on(vm, cpu, state_on_vcpu, &c) < 0)
		return -1;
	return c.result;
}

struct debug_call {
	struct vcpus *vs;
	const struct vcpu_debug *d;
	int result;
};

static void debug_on_vcpu(void *arg, unsigned cpu)
{
	struct debug_call *c = arg;
	const struct hv_ops *hv = &c->vs->hv;

	c->result = hv->set_debug ? hv->set_debug(hv->hv, cpu, c->d) : -ENOSYS;
}

int vcpu_set_debug(struct vm *vm, unsigned cpu, const struct vcpu_debug *d)
{
	struct debug_call c = { .vs = &vm->vcpus, .d = d };
	if (vcpu_run_on(vm, cpu, debug_on_vcpu, &c) < 0)
		return -1;
	return c.result;
}

int vcpu_set_state(struct vm *vm, unsigned cpu, const struct vcpu_state *s)
{
	struct state_call c = { .vs = &vm->vcpus, .set = s };
	if (vcpu_run_on(vm, cpu, state_on_vcpu, &c) < 0)
		return -1;
	return c.result;
}
