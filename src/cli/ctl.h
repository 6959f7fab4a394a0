/* ctl — `vigil ctl --api-sock PATH COMMAND`: drives a running vigil (or
 * Firecracker) through its API socket and prints what it answered. Called
 * by cli/main.c. */
#ifndef VIGIL_CLI_CTL_H
#define VIGIL_CLI_CTL_H

/* argv[0] is "ctl". Returns the process exit status: 0, or 1 on a usage
 * error, a socket that does not answer, or a 4xx/5xx answer. */
int ctl_main(int argc, char **argv);

#endif
