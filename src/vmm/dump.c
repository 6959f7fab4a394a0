/* PUT /vigil/dump: the guest as an ELF core (arch/x86/elf_core.h) written
 * to a file, with the VM paused so that memory and registers agree. The
 * file is written with pwrite() straight from guest RAM, in large pieces;
 * on any failure (a path that does not open, a full disk) the partial file
 * is removed and the reason goes back to the caller. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/cpu_state.h"
#include "arch/x86/elf_core.h"
#include "core/errmsg.h"
#include "core/vm.h"
#include "vmm/introspect.h"
#include "vmm/log.h"
#include "vmm/vmm.h"

#define CHUNK	 (64u << 20)
#define MAX_MAPS 500000 /* 28 MB of program headers at most */

static int write_at(void *ctx, uint64_t off, const void *buf, size_t len)
{
	int fd = *(int *)ctx;
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len < CHUNK ? len : CHUNK, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENOSPC;
		p += n, off += (uint64_t)n, len -= (size_t)n;
	}
	return 0;
}

static int dump_paused(struct vm *vm, struct vmm *m, int fd, char *err, size_t errlen)
{
	struct vcpu_state *cpus = calloc(vm->ncpus, sizeof(*cpus));
	struct elf_core_map *maps = NULL;
	size_t nmaps = 0;
	int r = -1;

	if (!cpus)
		return errmsg(err, errlen, "dump: out of memory");
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vmm_vcpu_state(m, i, &cpus[i], err, errlen) < 0)
			goto out;
	/* vCPU 0's view of the kernel half, for `gdb vmlinux core`. */
	struct pw_regs pr = pw_regs_of(&cpus[0]);
	if (elf_core_kernel_maps(&vm->mem, &pr, MAX_MAPS, &maps, &nmaps) < 0) {
		errmsg(err, errlen, "dump: out of memory");
		goto out;
	}
	struct elf_core c = { .mem = &vm->mem, .cpus = cpus, .ncpus = vm->ncpus, .maps = maps, .nmaps = nmaps };
	int e = elf_core_write(&c, write_at, &fd);
	if (e == 0 && fsync(fd) < 0)
		e = -errno;
	if (e < 0) {
		errmsg(err, errlen, "dump: %s", strerror(-e));
		goto out;
	}
	VLOG_INFO("guest core dumped: %u vCPUs, %zu kernel mappings", vm->ncpus, nmaps);
	r = 0;
out:
	free(maps);
	free(cpus);
	return r;
}

int vmm_dump(struct vmm *m, const char *path, char *err, size_t errlen)
{
	struct vm *vm = vmm_state(m) == VMM_STOPPED ? NULL : vmm_vm(m);
	if (!vm)
		return errmsg(err, errlen, vmm_state(m) == VMM_STOPPED ? "The microVM has stopped."
							 : "The requested operation is not supported before "
							   "starting the microVM.");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return errmsg(err, errlen, "dump: %s: %s", path, strerror(errno));
	/* Only a regular file: a failure removes it, which must never take
	 * a device node or a FIFO with it. */
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return errmsg(err, errlen, "dump: %s: not a regular file", path);
	}
	bool was_running = vmm_state(m) == VMM_RUNNING;
	if (was_running)
		vmm_pause(m, err, errlen);
	int r = dump_paused(vm, m, fd, err, errlen);
	if (was_running)
		vmm_resume(m, err, errlen);
	if (close(fd) < 0 && r == 0)
		r = errmsg(err, errlen, "dump: %s: %s", path, strerror(errno));
	if (r < 0)
		unlink(path);
	return r;
}
