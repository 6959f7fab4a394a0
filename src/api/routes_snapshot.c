/* PUT /snapshot/create and PUT /snapshot/load: the bodies are checked and
 * carried out by vmm/snapshot_json.c (the config file shares it). */
#include "api/routes_int.h"
#include "vmm/snapshot_json.h"

int api_put_snapshot_create(struct ctx *x)
{
	return vmm_snapshot_create_json(x->m, x->body, x->err, sizeof(x->err));
}

int api_put_snapshot_load(struct ctx *x)
{
	return vmm_snapshot_load_json(x->m, x->body, x->err, sizeof(x->err));
}
