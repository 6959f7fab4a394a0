/* The compiled policy's insides, shared by policy.c (decisions),
 * policy_compile.c (validation and table building) and nothing else. */
#ifndef VIGIL_CORE_POLICY_IMPL_H
#define VIGIL_CORE_POLICY_IMPL_H

#include "core/policy.h"
#include "core/policy_table.h"

/* Disk request kinds as the tables index them (enum req_kind's order). */
#define POL_DISK_KINDS 4
#define POL_NET_PROTOS 4

struct pol_drive {
	char name[POLICY_NAME_MAX + 1];
	struct ptab kind[POL_DISK_KINDS];
};

struct pol_cpuid {
	uint32_t leaf, subleaf;
	uint32_t rule;
};

struct pol_msr_range {
	uint32_t first, last;
	bool read, write;
};

struct policy {
	/* struct policy_head (policy.h), member for member */
	struct policy_spec spec;
	_Atomic uint64_t *hits; /* spec.nrules */
	uint32_t *port_rule[2];                 /* [write]: 64K labels, a direct port lookup (NULL: no pio rules) */

	struct ptab access[3][2];               /* [enum policy_space][write] */
	struct pol_drive *drives;               /* ndrives, sorted by name */
	unsigned ndrives;
	struct pcand net[2][POL_NET_PROTOS];    /* [enum policy_dir][enum policy_proto] */
	struct ptab vsock[2];                   /* [enum policy_vsock_dir] */
	struct pol_cpuid *cpuid_sub, *cpuid_any; /* sorted by (leaf, subleaf) / leaf; one entry each */
	size_t ncpuid_sub, ncpuid_any;
	int rtc;                                /* the first rtc rule, or -1 */
	struct pol_msr_range *msr;              /* nmsr, sorted, disjoint */
	size_t nmsr;
};

#endif
