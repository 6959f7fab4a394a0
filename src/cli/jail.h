/* jail — `vigil jail`: runs a `vigil run` command line inside a jail in the
 * manner of Firecracker's jailer (docs/JAILER.md in README's "Jailer"
 * section): fresh mount and PID namespaces, an optional network namespace,
 * pivot_root into <chroot-base>/vigil/<id>/root, cgroup limits, rlimits,
 * no capabilities, the given uid/gid, then exec of vigil's copy in the jail.
 * The jailer stays as the parent so that it can remove the VM's cgroups when
 * the VM ends. */
#ifndef VIGIL_CLI_JAIL_H
#define VIGIL_CLI_JAIL_H

/* argv[0] is "jail". Returns the jailed vigil's exit status (128+N when a
 * signal N ended it), or 1 when the jail cannot be made. */
int jail_main(int argc, char **argv);

/* 1 when a path may be brought into the jail under its own name: not
 * empty, not too long, no ".." component. */
int jail_path_ok(const char *p);

#endif
