/* Interrupt routing for the KVM backend: the GSI routing table (the
 * in-kernel PIC/IOAPIC pins plus one MSI route per device vector), irqfds
 * that inject those routes (an MSI handle is an irqfd), and ioeventfds that
 * ring the executor's doorbells (their eventfds) for queue notifications. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "host/exec_evloop.h"
#include "kvm/kvm.h"
#include "core/exit.h"
#include "kvm/kvm_internal.h"

#define IRQCHIP_GSIS 24
#define MAX_ROUTES 512

struct kvm_irq_routes {
	pthread_mutex_t lock;
	unsigned nr;
	unsigned next_gsi;
	struct kvm_irq_routing_entry e[MAX_ROUTES];
};

/* One VM per process: the table lives as long as the process. */
static struct kvm_irq_routes routes = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The table KVM is given, built under routes.lock in a static buffer: an
 * MSI-X write on a vCPU thread pushes it, and that path does not malloc. */
static _Alignas(struct kvm_irq_routing) unsigned char
	push_buf[sizeof(struct kvm_irq_routing) + MAX_ROUTES * sizeof(struct kvm_irq_routing_entry)];

static int push_routes(struct kvm_backend *kb)
{
	struct kvm_irq_routing *t = (struct kvm_irq_routing *)push_buf;
	t->nr = routes.nr;
	t->flags = 0;
	memcpy(t->entries, routes.e, routes.nr * sizeof(routes.e[0]));
	return ioctl(kb->vm_fd, KVM_SET_GSI_ROUTING, t) < 0 ? -errno : 0;
}

static void add_route(unsigned gsi, unsigned chip, unsigned pin)
{
	routes.e[routes.nr++] = (struct kvm_irq_routing_entry){
		.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP, .u.irqchip = { .irqchip = chip, .pin = pin } };
}

/* The PC wiring the MADT describes: ISA IRQs 0-15 reach both PICs and the
 * IOAPIC, 16-23 the IOAPIC, and the PIT's IRQ 0 arrives on IOAPIC pin 2
 * (the MADT's interrupt source override). KVM's default table sends IRQ 0
 * to pin 0 instead, where the guest never looks: no timer ticks. */
static void add_irqchip_routes(void)
{
	for (unsigned gsi = 0; gsi < IRQCHIP_GSIS; gsi++) {
		if (gsi < 16 && gsi != 2)
			add_route(gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, gsi % 8);
		if (gsi != 2)
			add_route(gsi, KVM_IRQCHIP_IOAPIC, gsi == 0 ? 2 : gsi);
	}
	routes.next_gsi = IRQCHIP_GSIS;
}

int kvm_irq_routing_init(struct kvm_backend *kb)
{
	pthread_mutex_lock(&routes.lock);
	routes.nr = 0;
	add_irqchip_routes();
	int r = push_routes(kb);
	pthread_mutex_unlock(&routes.lock);
	return r;
}

struct msi {
	int fd; /* irqfd: every write raises the route's message */
	unsigned gsi;
};

static int kvm_msi_alloc(void *ctx, struct msi **out)
{
	struct kvm_backend *kb = ctx;
	struct msi *m = malloc(sizeof(*m)); /* first: nothing to undo in KVM if it fails */
	int r = -ENOSPC;

	if (!m)
		return -ENOMEM;
	pthread_mutex_lock(&routes.lock);
	if (routes.nr < MAX_ROUTES) {
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0) {
			r = -errno;
			goto out;
		}
		unsigned gsi = routes.next_gsi++;
		routes.e[routes.nr++] = (struct kvm_irq_routing_entry){ .gsi = gsi, .type = KVM_IRQ_ROUTING_MSI };
		struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = gsi };
		if ((r = push_routes(kb)) < 0 || ioctl(kb->vm_fd, KVM_IRQFD, &irqfd) < 0) {
			r = r < 0 ? r : -errno;
			routes.nr--;
			routes.next_gsi--;
			close(fd);
			goto out;
		}
		*m = (struct msi){ .fd = fd, .gsi = gsi };
		*out = m;
		m = NULL;
		r = 0;
	}
out:
	pthread_mutex_unlock(&routes.lock);
	free(m);
	return r;
}

static int kvm_msi_set(void *ctx, struct msi *m, uint64_t addr, uint32_t data)
{
	int r = -ENOENT;
	unsigned handle = m->gsi;

	pthread_mutex_lock(&routes.lock);
	for (unsigned i = IRQCHIP_GSIS; i < routes.nr; i++) {
		struct kvm_irq_routing_entry *e = &routes.e[i];
		if (e->type != KVM_IRQ_ROUTING_MSI || e->gsi != handle)
			continue;
		if (e->u.msi.address_lo == (uint32_t)addr && e->u.msi.address_hi == (uint32_t)(addr >> 32) &&
		    e->u.msi.data == data) {
			r = 0;
			break;
		}
		e->u.msi.address_lo = (uint32_t)addr;
		e->u.msi.address_hi = (uint32_t)(addr >> 32);
		e->u.msi.data = data;
		r = push_routes(ctx);
		break;
	}
	pthread_mutex_unlock(&routes.lock);
	return r;
}

static void kvm_msi_fire(void *ctx, struct msi *m)
{
	uint64_t one = 1;
	(void)ctx;
	if (write(m->fd, &one, sizeof(one)) < 0) {
		/* eventfd counter full: the guest has an interrupt pending anyway */
	}
}

static void kvm_msi_free(void *ctx, struct msi *m)
{
	(void)ctx;
	if (m) {
		close(m->fd);
		free(m);
	}
}

/* The doorbell must come from evloop_exec(): its eventfd is what KVM signals. */
static int kvm_doorbell(void *ctx, uint64_t gpa, uint32_t len, struct doorbell *db, bool assign)
{
	struct kvm_backend *kb = ctx;
	struct kvm_ioeventfd io = { .addr = gpa, .len = len, .fd = evloop_doorbell_fd(db),
				    .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN };
	return ioctl(kb->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static bool kvm_doorbell_taken(void *ctx, uint64_t gpa, uint32_t len)
{
	struct kvm_backend *kb = ctx;
	return exit_judge_doorbell(kb->vm, gpa, len);
}

struct platform_ops kvm_platform_ops(struct kvm_backend *kb)
{
	return (struct platform_ops){ .msi_alloc = kvm_msi_alloc, .msi_set = kvm_msi_set,
				      .msi_fire = kvm_msi_fire, .msi_free = kvm_msi_free,
				      .doorbell = kvm_doorbell, .doorbell_taken = kvm_doorbell_taken, .ctx = kb };
}
