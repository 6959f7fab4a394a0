/* evloop — the VM's event thread: one epoll loop that runs callbacks when a
 * file descriptor becomes readable (queue-kick eventfds from KVM ioeventfd,
 * a TAP device, sockets, timers). Device backends that have host fds
 * register them here; callbacks run on the one event thread, one at a time,
 * and must not block. The control plane may park the thread between rounds
 * (evloop_pause/resume). */
#ifndef VIGIL_HOST_EVLOOP_H
#define VIGIL_HOST_EVLOOP_H

#include <stdint.h>

struct evloop;

/* events: EPOLLIN / EPOLLOUT / EPOLLHUP / EPOLLERR bits as epoll reports them. */
typedef void (*evloop_fn)(void *ctx, uint32_t events);

struct evloop *evloop_new(void);
/* Watches fd for `events` (EPOLLIN and/or EPOLLOUT); callable from any thread,
 * including from inside a callback. 0 or -errno. */
int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fn fn, void *ctx);
int evloop_mod(struct evloop *l, int fd, uint32_t events, evloop_fn fn, void *ctx);
/* Stops watching fd. Called on the event thread, it takes effect at once
 * (no later callback for fd in the same round). */
int evloop_del(struct evloop *l, int fd);
/* Runs `fn(ctx)` on the event thread soon (a wake-up through an eventfd);
 * -ESRCH when the loop is not running. */
int evloop_call(struct evloop *l, void (*fn)(void *ctx), void *ctx);
int evloop_start(struct evloop *l);
/* Parks the event thread: returns once the thread has finished its current
 * round of callbacks; no callback runs until evloop_resume(). Events and
 * evloop_call()s that arrive meanwhile wait and are delivered after resume.
 * For the control plane's VM pause (with vCPUs parked). Not from a callback
 * (it would wait for itself: -EDEADLK). 0, or -ESRCH when not running. */
int evloop_pause(struct evloop *l);
void evloop_resume(struct evloop *l);
/* Stops and joins the thread: no callback runs after this returns, but fds
 * may still be added and deleted (teardown). Safe to call twice. */
void evloop_stop(struct evloop *l);
/* Stops if needed, then frees. NULL is fine. */
void evloop_free(struct evloop *l);

#endif
