/* vigil — a virtual machine monitor. Subcommands: run, check, ctl, jail, policy. */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "cli/ctl.h"
#include "cli/jail.h"
#include "cli/policy_cmd.h"
#include "cli/run_cmd.h"
#include "cli/snapshot_editor.h"
#include "host/seccomp.h"
#include "kvm/kvm.h"

static void usage(FILE *out)
{
	fprintf(out,
		"vigil %s — a virtual machine monitor for KVM\n"
		"usage: vigil run [options]   boot a VM (vigil run --help)\n"
		"       vigil check           tell whether this host's KVM can run vigil\n"
		"       vigil ctl --api-sock PATH COMMAND\n"
		"                             drive a running VM: status, start, pause, resume,\n"
		"                             ctrl-alt-del, flush-metrics, config, stats, metrics,\n"
		"                             policy, regs, mem, translate, dump, trace, audit,\n"
		"                             snapshot, restore\n"
		"                             (vigil ctl --help)\n"
		"       vigil jail --id ID --uid U --gid G --chroot-base DIR [options] -- vigil run ...\n"
		"                             run a VM in a jail (vigil jail --help)\n"
		"       vigil policy check FILE\n"
		"                             read and compile a policy file (docs/POLICY.md)\n"
		"       vigil snapshot-editor edit-memory rebase --memory-path BASE --diff-path DIFF\n"
		"       vigil snapshot-editor info-vmstate version|sections --vmstate-path STATE\n"
		"                             merge a Diff snapshot's memory onto its base; read a state file\n"
		"       vigil seccomp-list [-v]\n"
		"                             each thread kind's allowed system calls (count; -v: names)\n"
		"       vigil --version | --help\n",
		VIGIL_VERSION);
}

int main(int argc, char **argv)
{
	/* One malloc arena for every thread: vigil's threads allocate only as
	 * they start (every exit and I/O path is allocation-free), and each
	 * extra arena is a 64 MiB reservation and 40-80 KiB resident per
	 * thread (issue 10: peak RSS). */
	mallopt(M_ARENA_MAX, 1);
	/* Big blocks (the VMM's and the machine's ~80 KiB configurations, the
	 * ACPI staging area) straight from mmap: fresh zero pages calloc need
	 * not clear, so only the bytes written become resident. */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	/* ... which only holds while the heap's top is smaller than they are:
	 * malloc carves any block from the top when it fits, and calloc then
	 * clears it (the default 128 KiB pad let both configurations come
	 * from it, written whole: ~120 KiB resident for nothing). */
	mallopt(M_TOP_PAD, 16 * 1024);
	if (argc < 2) {
		fprintf(stderr, "vigil: missing command (try 'vigil --help')\n");
		return 1;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("vigil %s\n", VIGIL_VERSION);
		return 0;
	}
	if (strcmp(cmd, "run") == 0)
		return run_main(argc - 1, argv + 1);
	if (strcmp(cmd, "ctl") == 0)
		return ctl_main(argc - 1, argv + 1);
	if (strcmp(cmd, "jail") == 0)
		return jail_main(argc - 1, argv + 1);
	if (strcmp(cmd, "policy") == 0)
		return policy_main(argc - 1, argv + 1);
	if (strcmp(cmd, "snapshot-editor") == 0)
		return snapshot_editor_main(argc - 1, argv + 1);
	if (strcmp(cmd, "seccomp-list") == 0) {
		bool verbose = argc > 2 && strcmp(argv[2], "-v") == 0;
		if (argc > 3 || (argc == 3 && !verbose)) {
			fprintf(stderr, "vigil: seccomp-list takes only -v\n");
			return 1;
		}
		seccomp_list(stdout, verbose);
		return 0;
	}
	if (strcmp(cmd, "check") == 0) {
		if (argc > 2) {
			fprintf(stderr, "vigil: check takes no arguments\n");
			return 1;
		}
		return kvm_check(stdout);
	}
	fprintf(stderr, "vigil: unknown command '%s' (try 'vigil --help')\n", cmd);
	return 1;
}
