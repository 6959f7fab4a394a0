/* policy_cmd — `vigil policy check FILE`: reads and compiles a policy file
 * exactly as --policy does, without a VM. */
#ifndef VIGIL_CLI_POLICY_CMD_H
#define VIGIL_CLI_POLICY_CMD_H

/* argv[0] is "policy". Exit status: 0 good ("policy: OK, N rules" on
 * stdout), 1 bad (the one-line reason on stderr). */
int policy_main(int argc, char **argv);

#endif
