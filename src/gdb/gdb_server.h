/* gdb_server — the gdb remote stub's socket and thread (control plane):
 * listens on `unix:PATH` or `tcp:HOST:PORT`, serves one client at a time
 * (a second is refused while one is attached), and joins the VM's debug
 * exits (vm->on_debug) to the stub (gdb_stub.h) all-stop: a breakpoint or
 * step on one vCPU parks every vCPU before gdb hears of it. A client that
 * vanishes is a detach: breakpoints out, the guest runs on. */
#ifndef VIGIL_GDB_SERVER_H
#define VIGIL_GDB_SERVER_H

#include <stddef.h>

struct vm;
struct gdb_server;

/* Checks a --gdb / "gdb" spec: 0, or -1 and a one-line reason. */
int gdb_spec_check(const char *spec, char *err, size_t errlen);

/* Listens on `spec` and starts the server thread; sets vm->on_debug. Call
 * after vcpus_init and before the vCPUs run. NULL + a reason in err. */
struct gdb_server *gdb_server_start(struct vm *vm, const char *spec, char *err, size_t errlen);

/* Drops a client (as a detach), stops the thread, closes the socket
 * (a Unix socket's file is removed). Call once the vCPU threads have
 * ended, before the VM is freed. NULL-safe. */
void gdb_server_stop(struct gdb_server *g);

#endif
