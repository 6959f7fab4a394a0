/* evloop — the VM's event thread: one epoll loop that runs callbacks when a
 * file descriptor becomes readable (queue-kick eventfds from KVM ioeventfd,
 * a TAP device, sockets, timers). Device backends that have host fds
 * register them here; callbacks run on the one event thread, one at a time,
 * and must not block. */
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
/* Parks the thread once its current round is done: no callback runs until
 * evloop_resume(); events that arrive meanwhile are delivered then. Not from
 * the event thread. Harmless when paused, stopped or never started. */
void evloop_pause(struct evloop *l);
void evloop_resume(struct evloop *l);
/* Stops and joins the thread: no callback runs after this returns, but fds
 * may still be added and deleted (teardown). Safe to call twice. */
void evloop_stop(struct evloop *l);
/* Stops if needed, then frees. NULL is fine. */
void evloop_free(struct evloop *l);

#endif
