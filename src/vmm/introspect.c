/* Guest memory and translations for the API (see introspect.h). Memory is
 * read through gmem while vCPUs may run: a snapshot, as a debugger's read
 * of a live machine is. The paging registers come through the vCPU's
 * mailbox, so a translation uses what the vCPU has loaded now. */
#include "vmm/introspect.h"

#include <inttypes.h>
#include <string.h>

#include "arch/x86/cpu_state.h"
#include "arch/x86/pagewalk.h"
#include "core/errmsg.h"
#include "core/vm.h"
#include "vmm/vmm.h"

static struct vm *started_vm(struct vmm *m, char *err, size_t errlen)
{
	struct vm *vm = vmm_state(m) == VMM_STOPPED ? NULL : vmm_vm(m);
	if (!vm)
		errmsg(err, errlen, vmm_state(m) == VMM_STOPPED ? "The microVM has stopped."
							 : "The requested operation is not supported before "
							   "starting the microVM.");
	return vm;
}

static int check_len(uint64_t len, char *err, size_t errlen)
{
	if (len == 0 || len > VMM_MEM_MAX)
		return errmsg(err, errlen, "memory: len %" PRIu64 " is out of range: 1 to %u (1 MiB)", len,
			      VMM_MEM_MAX);
	return 0;
}

int vmm_read_gpa(struct vmm *m, uint64_t gpa, void *dst, uint64_t len, char *err, size_t errlen)
{
	struct vm *vm = started_vm(m, err, errlen);
	if (!vm || check_len(len, err, errlen) < 0)
		return -1;
	if (gmem_read(&vm->mem, gpa, dst, len) < 0)
		return errmsg(err, errlen, "gpa 0x%" PRIx64 "+%" PRIu64 ": outside guest memory", gpa, len);
	return 0;
}

static int paging_regs(struct vmm *m, unsigned cpu, struct pw_regs *r, char *err, size_t errlen)
{
	struct vcpu_state s;
	if (vmm_vcpu_state(m, cpu, &s, err, errlen) < 0)
		return -1;
	*r = pw_regs_of(&s);
	return 0;
}

/* "gva 0x...: not present", or for a page outside RAM the gpa it maps to. */
static int walk_error(const struct gmem *mem, const struct pw_regs *r, uint64_t gva, int e, char *err,
		      size_t errlen)
{
	struct pw_result res;
	if (e == PW_NOT_RAM && pw_translate(mem, r, gva, &res) == PW_OK)
		return errmsg(err, errlen, "gva 0x%" PRIx64 ": maps to gpa 0x%" PRIx64 ", outside guest memory",
			      gva, res.gpa);
	return errmsg(err, errlen, "gva 0x%" PRIx64 ": %s", gva, pw_error_name(e));
}

int vmm_read_gva(struct vmm *m, unsigned cpu, uint64_t gva, void *dst, uint64_t len, char *err,
		 size_t errlen)
{
	struct vm *vm = started_vm(m, err, errlen);
	struct pw_regs r;
	if (!vm || check_len(len, err, errlen) < 0 || paging_regs(m, cpu, &r, err, errlen) < 0)
		return -1;
	int e = pw_read(&vm->mem, &r, gva, dst, len);
	if (e == PW_OK)
		return 0;
	/* Name the page that failed: the first one that does not read. */
	uint64_t at = gva, left = len;
	uint8_t byte;
	while (left && pw_read(&vm->mem, &r, at, &byte, 1) == PW_OK) {
		uint64_t step = 4096 - (at & 4095);
		if (step >= left)
			break;
		at += step, left -= step;
	}
	return walk_error(&vm->mem, &r, at, e, err, errlen);
}

int vmm_translate(struct vmm *m, unsigned cpu, uint64_t gva, struct pw_result *res, char *err, size_t errlen)
{
	struct vm *vm = started_vm(m, err, errlen);
	struct pw_regs r;
	if (!vm || paging_regs(m, cpu, &r, err, errlen) < 0)
		return -1;
	int e = pw_translate(&vm->mem, &r, gva, res);
	return e == PW_OK ? 0 : walk_error(&vm->mem, &r, gva, e, err, errlen);
}
