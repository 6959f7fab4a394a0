/* A fake target for the gdb stub's tests and its fuzzer: two vCPUs with
 * plain registers, 64 KiB of "guest memory" at virtual address 0x10000,
 * and the guest debug each vCPU was last given. */
#ifndef FAKE_GDB_TARGET_H
#define FAKE_GDB_TARGET_H

#include <string.h>

#include "gdb/gdb_stub.h"

#define FT_CPUS 2
#define FT_BASE 0x10000u
#define FT_SIZE 0x10000u

struct fake_target {
	struct vcpu_state regs[FT_CPUS];
	uint8_t mem[FT_SIZE];
	struct vcpu_debug debug[FT_CPUS];
	unsigned debug_calls;
	int killed;
};

static int ft_get_regs(void *t, unsigned cpu, struct vcpu_state *s)
{
	struct fake_target *f = t;
	if (cpu >= FT_CPUS)
		return -1;
	*s = f->regs[cpu];
	return 0;
}

static int ft_set_regs(void *t, unsigned cpu, const struct vcpu_state *s)
{
	struct fake_target *f = t;
	if (cpu >= FT_CPUS)
		return -1;
	f->regs[cpu] = *s;
	return 0;
}

static int ft_range(uint64_t addr, size_t len)
{
	return addr >= FT_BASE && len <= FT_SIZE && addr - FT_BASE <= FT_SIZE - len ? 0 : -1;
}

static int ft_read(void *t, unsigned cpu, uint64_t addr, void *buf, size_t len)
{
	struct fake_target *f = t;
	(void)cpu;
	if (ft_range(addr, len) < 0)
		return -1;
	memcpy(buf, f->mem + (addr - FT_BASE), len);
	return 0;
}

static int ft_write(void *t, unsigned cpu, uint64_t addr, const void *buf, size_t len)
{
	struct fake_target *f = t;
	(void)cpu;
	if (ft_range(addr, len) < 0)
		return -1;
	memcpy(f->mem + (addr - FT_BASE), buf, len);
	return 0;
}

static int ft_set_debug(void *t, unsigned cpu, const struct vcpu_debug *d)
{
	struct fake_target *f = t;
	if (cpu >= FT_CPUS)
		return -1;
	f->debug[cpu] = *d;
	f->debug_calls++;
	return 0;
}

static void ft_kill(void *t)
{
	((struct fake_target *)t)->killed++;
}

static const struct gdb_target_ops ft_ops = {
	.get_regs = ft_get_regs, .set_regs = ft_set_regs, .read_mem = ft_read, .write_mem = ft_write,
	.set_debug = ft_set_debug, .kill = ft_kill,
};

#endif
