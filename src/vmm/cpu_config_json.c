/* PUT /cpu-config (and the config file's "cpu-config"): Firecracker's custom
 * CPU template, x86 part, turned into policy rules (policy_json.h):
 *  - cpuid_modifiers[N] -> cpuid redirect "cpu-config.cpuid.N": the leaf,
 *    the subleaf when flags has KVM_CPUID_FLAG_SIGNIFCANT_INDEX (1), each
 *    register's bitmap as mask/value (several for one register: the later
 *    wins where they overlap);
 *  - msr_modifiers[N] -> msr redirect "cpu-config.msr.N", access read: a
 *    read returns the bitmap applied to 0 (the 1 bits; x bits read as 0,
 *    there being no host value to keep), writes are KVM's as without it.
 * The rules go first in the policy, replacing earlier "cpu-config." ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errmsg.h"
#include "vmm/policy_json.h"
#include "vmm/policy_json_int.h"

#define CPU_CONFIG_PREFIX "cpu-config."

/* "0b" + nbits of 0/1/x, bit nbits-1 first; '_' separators allowed. */
static int bitmap(const char *s, unsigned nbits, uint64_t *mask, uint64_t *value)
{
	unsigned n = 0;
	*mask = *value = 0;
	if (strncmp(s, "0b", 2))
		return -1;
	for (s += 2; *s; s++) {
		if (*s == '_')
			continue;
		if (n == nbits || (*s != '0' && *s != '1' && *s != 'x'))
			return -1;
		uint64_t bit = 1ull << (nbits - 1 - n++);
		if (*s != 'x')
			*mask |= bit;
		if (*s == '1')
			*value |= bit;
	}
	return n == nbits ? 0 : -1;
}

static int str_num(json_t *v, uint64_t max, uint64_t *out)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return *out <= max ? 0 : -1;
	}
	return json_is_string(v) && policy_parse_u64(json_string_value(v), out) == 0 && *out <= max ? 0 : -1;
}

static int only_keys(json_t *o, const char *const *keys, const char *where, char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		int i;
		for (i = 0; keys[i] && strcmp(keys[i], k); i++)
			;
		if (!keys[i])
			return errmsg(err, errlen, "cpu-config%s%s: unknown field `%.64s`",
				      *where ? ": " : "", where, k);
	}
	return 0;
}

static int cpuid_rule(json_t *o, size_t n, struct policy_rule *r, char *err, size_t errlen)
{
	static const char *const keys[] = {"leaf", "subleaf", "flags", "modifiers", NULL};
	static const char *const regs[] = {"eax", "ebx", "ecx", "edx"};
	char where[48];
	uint64_t leaf, sub = 0;
	json_t *v, *m;
	size_t i;
	snprintf(where, sizeof(where), "cpuid_modifiers[%zu]", n);
	if (!json_is_object(o))
		return errmsg(err, errlen, "cpu-config: %s: not an object", where);
	if (only_keys(o, keys, where, err, errlen) < 0)
		return -1;
	if (str_num(json_object_get(o, "leaf"), 0xffffffffu, &leaf) < 0)
		return errmsg(err, errlen, "cpu-config: %s: leaf: must be a number such as \"0x1\"", where);
	if ((v = json_object_get(o, "subleaf")) && str_num(v, 0xffffffffu, &sub) < 0)
		return errmsg(err, errlen, "cpu-config: %s: subleaf: must be a number such as \"0x0\"",
			      where);
	v = json_object_get(o, "flags");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 0xffffffffLL))
		return errmsg(err, errlen, "cpu-config: %s: flags: must be an integer", where);
	snprintf(r->id, sizeof(r->id), CPU_CONFIG_PREFIX "cpuid.%zu", n);
	r->resource = POL_RES_CPUID;
	r->verdict = POLICY_REDIRECT;
	r->audit = true;
	r->leaf = (uint32_t)leaf;
	r->has_subleaf = v && (json_integer_value(v) & 1);
	r->subleaf = r->has_subleaf ? (uint32_t)sub : 0;
	if (!json_is_array(v = json_object_get(o, "modifiers")) || !json_array_size(v))
		return errmsg(err, errlen, "cpu-config: %s: modifiers: must be a non-empty array", where);
	json_array_foreach(v, i, m)
	{
		static const char *const mkeys[] = {"register", "bitmap", NULL};
		const char *reg = json_string_value(json_object_get(m, "register"));
		const char *bm = json_string_value(json_object_get(m, "bitmap"));
		uint64_t mask, value;
		int k;
		if (!json_is_object(m) || only_keys(m, mkeys, where, err, errlen) < 0)
			return json_is_object(m)
				   ? -1
				   : errmsg(err, errlen, "cpu-config: %s: modifiers[%zu]: not an object",
					    where, i);
		for (k = 0; k < 4 && (!reg || strcmp(reg, regs[k])); k++)
			;
		if (k == 4)
			return errmsg(
			    err, errlen,
			    "cpu-config: %s: modifiers[%zu]: register: must be eax, ebx, ecx or edx", where,
			    i);
		if (!bm || bitmap(bm, 32, &mask, &value) < 0)
			return errmsg(
			    err, errlen,
			    "cpu-config: %s: modifiers[%zu]: bitmap: must be \"0b\" and 32 of 0, 1 or x",
			    where, i);
		struct policy_cpuid_reg *cr = &r->regs[k];
		cr->value = (uint32_t)((cr->value & ~mask) | (value & mask));
		cr->mask |= (uint32_t)mask;
	}
	return 0;
}

static int msr_rule(json_t *o, size_t n, struct policy_rule *r, char *err, size_t errlen)
{
	static const char *const keys[] = {"addr", "bitmap", NULL};
	char where[48];
	uint64_t addr, mask, value;
	snprintf(where, sizeof(where), "msr_modifiers[%zu]", n);
	if (!json_is_object(o))
		return errmsg(err, errlen, "cpu-config: %s: not an object", where);
	if (only_keys(o, keys, where, err, errlen) < 0)
		return -1;
	if (str_num(json_object_get(o, "addr"), 0xffffffffu, &addr) < 0)
		return errmsg(err, errlen, "cpu-config: %s: addr: must be a number such as \"0x10a\"", where);
	const char *bm = json_string_value(json_object_get(o, "bitmap"));
	if (!bm || bitmap(bm, 64, &mask, &value) < 0)
		return errmsg(err, errlen, "cpu-config: %s: bitmap: must be \"0b\" and 64 of 0, 1 or x",
			      where);
	if (!(r->ranges = malloc(sizeof(*r->ranges))))
		return errmsg(err, errlen, "out of memory");
	snprintf(r->id, sizeof(r->id), CPU_CONFIG_PREFIX "msr.%zu", n);
	r->resource = POL_RES_MSR;
	r->verdict = POLICY_REDIRECT;
	r->audit = true;
	r->access = POL_ACC_READ;
	r->nranges = 1;
	r->ranges[0] = (struct policy_range){addr, addr};
	r->has_value = true;
	r->value = value;
	return 0;
}

int cpu_config_json_apply(json_t *o, struct policy_spec *s, char *err, size_t errlen)
{
	static const char *const keys[] = {"kvm_capabilities", "cpuid_modifiers", "msr_modifiers",
					   "reg_modifiers",    "vcpu_features",	  NULL};
	json_t *cm, *mm, *v;
	if (!json_is_object(o))
		return errmsg(err, errlen, "cpu-config: must be an object");
	if (only_keys(o, keys, "", err, errlen) < 0)
		return -1;
	for (int i = 0; i < 3; i++) {
		static const char *const none[] = {"kvm_capabilities", "reg_modifiers", "vcpu_features"};
		if ((v = json_object_get(o, none[i])) && !(json_is_array(v) && !json_array_size(v)))
			return errmsg(err, errlen, "cpu-config: %s: vigil does not support it%s", none[i],
				      i ? " (aarch64 only)" : "");
	}
	cm = json_object_get(o, "cpuid_modifiers");
	mm = json_object_get(o, "msr_modifiers");
	if ((cm && !json_is_array(cm)) || (mm && !json_is_array(mm)))
		return errmsg(err, errlen, "cpu-config: %s: must be an array",
			      cm && !json_is_array(cm) ? "cpuid_modifiers" : "msr_modifiers");
	size_t ncpu = cm ? json_array_size(cm) : 0, nmsr = mm ? json_array_size(mm) : 0, keep = 0;
	for (unsigned i = 0; i < s->nrules; i++)
		keep += strncmp(s->rules[i].id, CPU_CONFIG_PREFIX, strlen(CPU_CONFIG_PREFIX)) != 0;
	size_t total = ncpu + nmsr + keep;
	if (total > POLICY_MAX_RULES)
		return errmsg(err, errlen, "cpu-config: %zu rules with the policy's, at most %d", total,
			      POLICY_MAX_RULES);
	struct policy_spec ns = {.mode = s->mode, .max_host_connections = s->max_host_connections};
	if (total && !(ns.rules = calloc(total, sizeof(*ns.rules))))
		return errmsg(err, errlen, "out of memory");
	int rc = 0;
	for (size_t i = 0; i < ncpu && !rc; i++, ns.nrules++)
		rc = cpuid_rule(json_array_get(cm, i), i, &ns.rules[ns.nrules], err, errlen);
	for (size_t i = 0; i < nmsr && !rc; i++, ns.nrules++)
		rc = msr_rule(json_array_get(mm, i), i, &ns.rules[ns.nrules], err, errlen);
	/* then the policy's own rules, copied (the old spec stays intact until
	 * the whole new one compiles) */
	struct policy_spec rest;
	if (!rc && (rc = policy_spec_copy(&rest, s)) < 0)
		rc = errmsg(err, errlen, "out of memory");
	else if (!rc) {
		for (unsigned i = 0; i < rest.nrules; i++) {
			if (!strncmp(rest.rules[i].id, CPU_CONFIG_PREFIX, strlen(CPU_CONFIG_PREFIX)))
				continue;
			ns.rules[ns.nrules++] = rest.rules[i];
			rest.rules[i].ranges = NULL;
			rest.rules[i].overlay = NULL;
		}
		policy_spec_free(&rest);
	}
	struct policy *p = rc ? NULL : policy_compile(&ns, err, errlen);
	if (!p) {
		policy_spec_free(&ns);
		return -1;
	}
	policy_free(p);
	policy_spec_free(s);
	*s = ns;
	return 0;
}
