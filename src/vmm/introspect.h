/* introspect — what the API reads of a running (or paused) guest: memory by
 * physical or virtual address, a vCPU's translation of a virtual address,
 * and the ELF core dump. Registers come through the vCPU mailbox
 * (vmm_vcpu_state), memory straight from gmem (a snapshot while vCPUs
 * run), the walk from arch/x86/pagewalk.h. Control thread only, like the
 * rest of vmm.h. Every failure is -1 + a one-line reason in err. */
#ifndef VIGIL_VMM_INTROSPECT_H
#define VIGIL_VMM_INTROSPECT_H

#include <stddef.h>
#include <stdint.h>

struct vmm;
struct pw_result;

#define VMM_MEM_MAX (1u << 20) /* one read at most: 1 MiB */

/* [gpa, gpa+len) must lie in guest RAM; len 1..VMM_MEM_MAX. */
int vmm_read_gpa(struct vmm *m, uint64_t gpa, void *dst, uint64_t len, char *err, size_t errlen);
/* Translated through vCPU `cpu`'s page tables, page by page. */
int vmm_read_gva(struct vmm *m, unsigned cpu, uint64_t gva, void *dst, uint64_t len, char *err,
		 size_t errlen);
int vmm_translate(struct vmm *m, unsigned cpu, uint64_t gva, struct pw_result *res, char *err, size_t errlen);

/* Writes an ELF core of the guest to `path` with the VM paused around it
 * (when it was running); a partial file is removed. */
int vmm_dump(struct vmm *m, const char *path, char *err, size_t errlen);

#endif
