/* `vigil policy check FILE` (policy_cmd.h). */
#include "cli/policy_cmd.h"

#include <stdio.h>
#include <string.h>

#include "kvm/kvm.h"
#include "vmm/policy_json.h"

int policy_main(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: vigil policy check FILE   read and compile a policy file (docs/POLICY.md)\n");
		return 0;
	}
	if (argc != 3 || strcmp(argv[1], "check") != 0) {
		fprintf(stderr, "vigil: usage: vigil policy check FILE\n");
		return 1;
	}
	struct policy_spec s;
	char err[640];
	if (policy_json_load_file(argv[2], &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigil: %s\n", err);
		return 1;
	}
	struct policy *p = policy_compile(&s, err, sizeof(err));
	if (!p) {
		policy_spec_free(&s);
		fprintf(stderr, "vigil: %s\n", err);
		return 1;
	}
	/* KVM's MSR filter has limits of its own (16 ranges): a policy that
	 * would not fit is refused here as it would be by `vigil run`. */
	if (kvm_policy_check(NULL, p, err, sizeof(err)) < 0) {
		policy_free(p);
		policy_spec_free(&s);
		fprintf(stderr, "vigil: %s\n", err);
		return 1;
	}
	printf("policy: OK, %u rule%s, %s\n", s.nrules, s.nrules == 1 ? "" : "s",
	       s.mode == POLICY_PERMISSIVE ? "permissive" : "enforce");
	policy_free(p);
	policy_spec_free(&s);
	return 0;
}
