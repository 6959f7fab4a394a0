/* exec_evloop — the portable executor (core/exec.h) on the Linux event
 * thread: post is evloop_call, a timer is a timerfd, a doorbell an eventfd
 * watched by the loop. Used by the builder (src/cli) and by the KVM backend,
 * which binds a doorbell's eventfd to a guest address (ioeventfd).
 * Threading: as core/exec.h. */
#ifndef VIGIL_HOST_EXEC_EVLOOP_H
#define VIGIL_HOST_EXEC_EVLOOP_H

#include "core/exec.h"
#include "host/evloop.h"

struct exec evloop_exec(struct evloop *l);
/* The eventfd behind a doorbell made by evloop_exec(): KVM signals it. */
int evloop_doorbell_fd(const struct doorbell *db);

#endif
