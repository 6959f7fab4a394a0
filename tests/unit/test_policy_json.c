/* The policy file's reader and writer (vmm/policy_json.h): every field of
 * every resource, the defaults, the round trip through GET /policy's
 * document, and one clear line for each bad policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/policy_json.h"
#include "vmm/policy_json_int.h"

static char err[640];

static int parse(const char *text, struct policy_spec *s)
{
	err[0] = 0;
	return policy_json_parse_text(text, strlen(text), s, err, sizeof(err));
}

static void bad(const char *text, const char *want)
{
	struct policy_spec s;
	if (parse(text, &s) == 0) {
		policy_spec_free(&s);
		fail_msg("accepted: %s", text);
	}
	if (!strstr(err, want))
		fail_msg("for %s\n got: %s\nwant: %s", text, err, want);
	assert_null(strchr(err, '\n'));
	assert_int_equal(s.nrules, 0);
	assert_null(s.rules);
}

static const char *full =
    "{\"mode\":\"permissive\",\"limits\":{\"max_host_connections\":16},\"rules\":["
    "{\"id\":\"com2\",\"resource\":\"pio\",\"ports\":\"0x2f8-0x2ff\",\"verdict\":\"deny\"},"
    "{\"id\":\"p80\",\"resource\":\"pio\",\"ports\":[\"0x80\",\"0x3f8-0x3ff\", 100],\"verdict\":\"redirect\","
    "\"value\":\"0xff\",\"access\":\"read\",\"audit\":false},"
    "{\"id\":\"pto\",\"resource\":\"pio\",\"ports\":\"0x2e8-0x2ef\",\"verdict\":\"redirect\",\"to\":"
    "\"0x3e8\"},"
    "{\"id\":\"hpet\",\"resource\":\"mmio\",\"addresses\":\"0xfed00000-0xfed003ff\",\"verdict\":\"deny\","
    "\"access\":\"write\"},"
    "{\"id\":\"tsc\",\"resource\":\"msr\",\"msrs\":\"0x10\",\"verdict\":\"redirect\",\"value\":5},"
    "{\"id\":\"leaf1\",\"resource\":\"cpuid\",\"leaf\":1,\"verdict\":\"redirect\",\"registers\":"
    "{\"ecx\":\"0b0xxxxxxxxxxxxxxxxxxxxxxxxxxxxx1x\",\"eax\":\"0x12\"}},"
    "{\"id\":\"leaf7\",\"resource\":\"cpuid\",\"leaf\":\"0x7\",\"subleaf\":0,\"verdict\":\"redirect\","
    "\"registers\":{\"ebx\":0}},"
    "{\"id\":\"ro\",\"resource\":\"disk\",\"drive\":\"rootfs\",\"access\":\"write\",\"sectors\":\"0-2047\","
    "\"verdict\":\"deny\"},"
    "{\"id\":\"cow\",\"resource\":\"disk\",\"drive\":\"rootfs\",\"verdict\":\"redirect\","
    "\"overlay\":\"/tmp/vigil-test-overlay.img\"},"
    "{\"id\":\"web\",\"resource\":\"net\",\"direction\":\"egress\",\"proto\":\"tcp\",\"dst\":\"10.0.0.0/8\","
    "\"ports\":[80,443],\"verdict\":\"provide\",\"iface\":\"eth0\"},"
    "{\"id\":\"proxy\",\"resource\":\"net\",\"proto\":\"tcp\",\"ports\":8080,\"verdict\":\"redirect\","
    "\"to\":\"127.0.0.1:9000\"},"
    "{\"id\":\"ping\",\"resource\":\"net\",\"proto\":\"icmp\",\"dst\":\"192.168.1.1\",\"verdict\":\"deny\"},"
    "{\"id\":\"vs\",\"resource\":\"vsock\",\"direction\":\"guest-to-host\",\"ports\":\"1-1023\","
    "\"verdict\":\"redirect\",\"to_port\":5000},"
    "{\"id\":\"vsin\",\"resource\":\"vsock\",\"direction\":\"host-to-guest\",\"verdict\":\"deny\"},"
    "{\"id\":\"clock\",\"resource\":\"rtc\",\"verdict\":\"redirect\",\"epoch\":\"2001-02-03T04:05:06.25+01:"
    "00\"},"
    "{\"id\":\"deny-all\",\"resource\":\"net\",\"verdict\":\"deny\"}"
    "]}";

static void every_field(void **state)
{
	struct policy_spec s;
	assert_int_equal(parse(full, &s), 0);
	assert_int_equal(s.mode, POLICY_PERMISSIVE);
	assert_int_equal(s.max_host_connections, 16);
	assert_int_equal(s.nrules, 16);
	const struct policy_rule *r = s.rules;

	assert_string_equal(r[0].id, "com2");
	assert_int_equal(r[0].resource, POL_RES_PIO);
	assert_int_equal(r[0].verdict, POLICY_DENY);
	assert_true(r[0].audit); /* deny: audited by default */
	assert_int_equal(r[0].access, POL_ACC_ANY);
	assert_int_equal(r[0].nranges, 1);
	assert_int_equal(r[0].ranges[0].first, 0x2f8);
	assert_int_equal(r[0].ranges[0].last, 0x2ff);

	assert_false(r[1].audit);
	assert_int_equal(r[1].access, POL_ACC_READ);
	assert_int_equal(r[1].nranges, 3);
	assert_int_equal(r[1].ranges[2].first, 100);
	assert_true(r[1].has_value);
	assert_int_equal(r[1].value, 0xff);
	assert_true(r[2].has_to);
	assert_int_equal(r[2].to, 0x3e8);

	assert_int_equal(r[3].resource, POL_RES_MMIO);
	assert_int_equal(r[3].access, POL_ACC_WRITE);
	assert_int_equal(r[3].ranges[0].last, 0xfed003ff);
	assert_int_equal(r[4].resource, POL_RES_MSR);
	assert_int_equal(r[4].value, 5);

	/* "0b" bitmaps: bit 31 first; x leaves the bit alone */
	assert_int_equal(r[5].leaf, 1);
	assert_false(r[5].has_subleaf);
	assert_int_equal(r[5].regs[2].mask, 0x80000002);
	assert_int_equal(r[5].regs[2].value, 0x00000002);
	assert_int_equal(r[5].regs[0].mask, 0xffffffff);
	assert_int_equal(r[5].regs[0].value, 0x12);
	assert_int_equal(r[5].regs[1].mask, 0);
	assert_true(r[6].has_subleaf);
	assert_int_equal(r[6].regs[1].mask, 0xffffffff);

	assert_string_equal(r[7].drive, "rootfs");
	assert_int_equal(r[7].access, POL_ACC_WRITE);
	assert_int_equal(r[7].ranges[0].last, 2047);
	assert_string_equal(r[8].overlay, "/tmp/vigil-test-overlay.img");
	assert_int_equal(r[8].nranges, 0);

	assert_string_equal(r[9].iface, "eth0");
	assert_int_equal(r[9].proto, POL_PROTO_TCP);
	assert_int_equal(r[9].dst_ip, 0x0a000000);
	assert_int_equal(r[9].dst_prefix, 8);
	assert_false(r[9].audit);
	assert_int_equal(r[10].to_ip, 0x7f000001);
	assert_int_equal(r[10].to_port, 9000);
	assert_int_equal(r[10].dir, POL_DIR_EGRESS);
	assert_int_equal(r[11].dst_prefix, 32);
	assert_int_equal(r[11].dst_ip, 0xc0a80101);

	assert_int_equal(r[12].vdir, POL_VSOCK_G2H);
	assert_int_equal(r[12].to_vport, 5000);
	assert_int_equal(r[13].vdir, POL_VSOCK_H2G);

	assert_int_equal(r[14].rtc_kind, POL_RTC_EPOCH);
	assert_int_equal(r[14].epoch_s, 981173106 - 3600);
	assert_int_equal(r[14].epoch_ns, 250000000);
	policy_spec_free(&s);
}

static void same_spec(const struct policy_spec *a, const struct policy_spec *b)
{
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->max_host_connections, b->max_host_connections);
	assert_int_equal(a->nrules, b->nrules);
	for (unsigned i = 0; i < a->nrules; i++) {
		struct policy_rule x = a->rules[i], y = b->rules[i];
		assert_int_equal(x.nranges, y.nranges);
		if (x.nranges)
			assert_memory_equal(x.ranges, y.ranges, x.nranges * sizeof(*x.ranges));
		assert_true(!x.overlay == !y.overlay);
		if (x.overlay)
			assert_string_equal(x.overlay, y.overlay);
		x.ranges = y.ranges = NULL;
		x.overlay = y.overlay = NULL;
		if (memcmp(&x, &y, sizeof(x)))
			fail_msg("rule %u (%s) differs after the round trip", i, x.id);
	}
}

static void round_trip(void **state)
{
	struct policy_spec a, b;
	assert_int_equal(parse(full, &a), 0);
	json_t *doc = policy_json_dump(&a);
	assert_non_null(doc);
	char *text = json_dumps(doc, JSON_COMPACT);
	assert_int_equal(policy_json_parse(doc, &b, err, sizeof(err)), 0);
	same_spec(&a, &b);
	/* and the text of it: the second dump is the first */
	json_t *doc2 = policy_json_dump(&b);
	char *text2 = json_dumps(doc2, JSON_COMPACT);
	assert_string_equal(text, text2);
	free(text);
	free(text2);
	json_decref(doc);
	json_decref(doc2);
	policy_spec_free(&a);
	policy_spec_free(&b);
}

static void default_policy(void **state)
{
	struct policy_spec s = {0};
	json_t *doc = policy_json_dump(&s);
	char *text = json_dumps(doc, JSON_COMPACT);
	assert_string_equal(text, "{\"mode\":\"enforce\",\"rules\":[]}");
	free(text);
	json_decref(doc);
	assert_int_equal(parse("{}", &s), 0);
	assert_int_equal(s.nrules, 0);
	assert_int_equal(s.mode, POLICY_ENFORCE);
}

static void bad_policies(void **state)
{
	bad("[]", "policy: must be a JSON object");
	bad("{\"rules\":{}}", "policy: rules: not an array");
	bad("{\"mode\":\"strict\"}", "policy: mode: must be \"enforce\" or \"permissive\"");
	bad("{\"modes\":1}", "policy: unknown field \"modes\"");
	bad("{\"limits\":{\"max_host_connections\":0}}", "policy: limits: max_host_connections");
	bad("{\"rules\":[1]}", "policy: rule #1: not an object");
	bad("{\"rules\":[{\"resource\":\"pio\"}]}", "policy: rule #1: missing field \"id\"");
	bad("{\"rules\":[{\"id\":\"\"}]}", "policy: rule #1: id: must be a string of 1 to 47");
	bad("{\"rules\":[{\"id\":\"a b\"}]}", "policy: rule #1: id: only letters");
	bad("{\"rules\":[{\"id\":\"a\",\"resource\":\"gpu\",\"verdict\":\"deny\"}]}",
	    "policy: rule \"a\" (#1): resource: unknown resource \"gpu\"");
	bad("{\"rules\":[{\"id\":\"ok\",\"resource\":\"pio\",\"ports\":1,\"verdict\":\"deny\"},"
	    "{\"id\":\"b\",\"resource\":\"pio\",\"prots\":1,\"verdict\":\"deny\"}]}",
	    "policy: rule \"b\" (#2): unknown field \"prots\" for resource pio");
	bad("{\"rules\":[{\"id\":\"b\",\"resource\":\"pio\",\"msrs\":1,\"verdict\":\"deny\"}]}",
	    "unknown field \"msrs\" for resource pio");
	bad("{\"rules\":[{\"id\":\"com2\",\"resource\":\"pio\",\"ports\":\"0x3ff-0x3f8\",\"verdict\":"
	    "\"deny\"}]}",
	    "policy: rule \"com2\" (#1): ports: reversed range \"0x3ff-0x3f8\"");
	bad("{\"rules\":[{\"id\":\"a\",\"resource\":\"pio\",\"ports\":[\"0x3f8-0x3ff\",\"0x3fa\"],"
	    "\"verdict\":\"deny\"}]}",
	    "ports: 0x3fa overlaps 0x3f8-0x3ff");
	bad("{\"rules\":[{\"id\":\"a\",\"resource\":\"pio\",\"ports\":\"0x10000\",\"verdict\":\"deny\"}]}",
	    "ports: \"0x10000\" is out of range");
	bad("{\"rules\":[{\"id\":\"a\",\"resource\":\"pio\",\"ports\":-1,\"verdict\":\"deny\"}]}",
	    "ports: -1 is out of range");
	bad("{\"rules\":[{\"id\":\"a\",\"resource\":\"pio\",\"ports\":true,\"verdict\":\"deny\"}]}",
	    "ports: must be a number");
	bad("{\"rules\":[{\"id\":\"a\",\"resource\":\"pio\",\"ports\":\"0xg\",\"verdict\":\"deny\"}]}",
	    "is not a number");
	bad("{\"rules\":[{\"id\":\"a\",\"resource\":\"pio\",\"ports\":[],\"verdict\":\"deny\"}]}",
	    "ports: empty list");
	bad("{\"rules\":[{\"id\":\"a\",\"resource\":\"pio\",\"verdict\":\"deny\"}]}", "ports: missing");
	bad("{\"rules\":[{\"id\":\"a\",\"resource\":\"pio\",\"ports\":1,\"verdict\":\"allow\"}]}",
	    "verdict: \"allow\" is not \"provide\", \"redirect\" or \"deny\"");
	bad("{\"rules\":[{\"id\":\"a\",\"resource\":\"pio\",\"ports\":1,\"verdict\":\"deny\",\"audit\":1}]}",
	    "audit: must be true or false");
	bad("{\"rules\":[{\"id\":\"a\",\"resource\":\"pio\",\"ports\":1,\"verdict\":\"deny\",\"access\":"
	    "\"rw\"}]}",
	    "access: \"rw\" is not");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"pio\",\"ports\":1,\"verdict\":\"redirect\"}]}",
	    "policy: rule \"x\" (#1): verdict: a redirect needs a target: \"value\" or \"to\"");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"pio\",\"ports\":\"0x3f8-0x3ff\",\"verdict\":\"redirect\",\"to\":\"0xfffc\"}]}",
	    "to: 0xfffc plus the 8-long range 0x3f8-0x3ff runs past 0xffff");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"pio\",\"ports\":1,\"verdict\":\"deny\",\"value\":1}]}",
	    "value: only a redirect has a target");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"msr\",\"msrs\":1,\"verdict\":\"redirect\"}]}",
	    "a redirect needs a target: \"value\"");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"msr\",\"msrs\":\"0x0-0x1fff\",\"verdict\":\"deny\"}]}",
	    "msrs: 0x800-0x8ff are the x2APIC MSRs");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"cpuid\",\"leaf\":1,\"verdict\":\"redirect\"}]}",
	    "a redirect needs a target: \"registers\"");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"cpuid\",\"leaf\":1,\"verdict\":\"deny\",\"registers\":{"
	    "\"eax\":1}}]}",
	    "a cpuid rule can only redirect");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"cpuid\",\"leaf\":1,\"verdict\":\"redirect\","
	    "\"registers\":{\"esi\":1}}]}",
	    "registers: unknown register \"esi\"");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"cpuid\",\"leaf\":1,\"verdict\":\"redirect\","
	    "\"registers\":{\"eax\":\"0b01\"}}]}",
	    "registers.eax: a bitmap is \"0b\" and 32");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"disk\",\"drive\":\"d\",\"verdict\":\"redirect\"}]}",
	    "a redirect needs a target: \"overlay\"");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"net\",\"proto\":\"tcp\",\"verdict\":\"redirect\"}]}",
	    "a redirect needs a target: \"to\"");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"net\",\"verdict\":\"redirect\",\"to\":\"localhost:80\"}"
	    "]}",
	    "to: \"localhost:80\" is not \"HOST:PORT\"");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"net\",\"dst\":\"10.0.0.1/8\",\"verdict\":\"deny\"}]}",
	    "dst: \"10.0.0.1/8\" has bits set beyond its /8 prefix");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"net\",\"dst\":\"10.0.0/8\",\"verdict\":\"deny\"}]}",
	    "dst: \"10.0.0/8\" is not an IPv4 address");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"net\",\"proto\":\"icmp\",\"ports\":1,\"verdict\":"
	    "\"deny\"}]}",
	    "ports: ICMP has no ports");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"vsock\",\"verdict\":\"redirect\"}]}",
	    "a redirect needs a target: \"to_port\"");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"rtc\",\"verdict\":\"redirect\"}]}",
	    "a redirect needs a target: \"epoch\" or \"offset_s\"");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"rtc\",\"verdict\":\"redirect\",\"epoch\":\"2001-02-"
	    "30T00:00:00Z\"}]}",
	    "epoch: \"2001-02-30T00:00:00Z\" is not an RFC 3339 time");
	bad("{\"rules\":[{\"id\":\"x\",\"resource\":\"rtc\",\"verdict\":\"redirect\",\"epoch\":\"2001-02-"
	    "03\"}]}",
	    "is not an RFC 3339 time");
	bad("{\"rules\":[{\"id\":\"d\",\"resource\":\"pio\",\"ports\":1,\"verdict\":\"deny\"},"
	    "{\"id\":\"e\",\"resource\":\"pio\",\"ports\":2,\"verdict\":\"deny\"},"
	    "{\"id\":\"d\",\"resource\":\"pio\",\"ports\":3,\"verdict\":\"deny\"}]}",
	    "policy: rule \"d\" (#3): id: duplicate id (rule #1 has it too)");
	bad("{\"rules\":[{\"id\":\"a\"", "policy: line 1");
	bad("{\"mode\":\"enforce\",\"mode\":\"permissive\"}", "duplicate");
}

static void overlay_checked(void **state)
{
	char dir[] = "/tmp/vigil-ro-XXXXXX";
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0555), 0);
	char text[512];
	snprintf(text, sizeof(text),
		 "{\"rules\":[{\"id\":\"cow\",\"resource\":\"disk\",\"drive\":\"d\",\"verdict\":\"redirect\","
		 "\"overlay\":\"%s/o.img\"}]}",
		 dir);
	bad(text, "policy: rule \"cow\" (#1): overlay: cannot create");
	assert_non_null(strstr(err, "is read-only") ? err : strstr(err, "not writable"));
	chmod(dir, 0755);
	struct policy_spec s;
	assert_int_equal(parse(text, &s), 0);
	policy_spec_free(&s);
	rmdir(dir);
}

/* n rules "r0".."r(n-1)", each a port deny. */
static char *many_rules(unsigned n, size_t *len)
{
	size_t cap = 64 + (size_t)n * 64;
	char *t = malloc(cap);
	size_t o = (size_t)snprintf(t, cap, "{\"rules\":[");
	for (unsigned i = 0; i < n; i++)
		o += (size_t)snprintf(
		    t + o, cap - o,
		    "%s{\"id\":\"r%u\",\"resource\":\"pio\",\"ports\":%u,\"verdict\":\"deny\"}", i ? "," : "",
		    i, i & 0xffff);
	o += (size_t)snprintf(t + o, cap - o, "]}");
	*len = o;
	return t;
}

static void sizes(void **state)
{
	struct policy_spec s;
	size_t len;
	char *t = many_rules(10000, &len);
	assert_int_equal(policy_json_parse_text(t, len, &s, err, sizeof(err)), 0);
	assert_int_equal(s.nrules, 10000);
	struct policy *p = policy_compile(&s, err, sizeof(err));
	assert_non_null(p);
	policy_free(p);
	policy_spec_free(&s);
	free(t);

	/* 100,000 rules: refused by count (before each is read) */
	size_t cap = 100000 * 20 + 32, o = 0;
	t = malloc(cap);
	o += (size_t)snprintf(t, cap, "{\"rules\":[");
	for (unsigned i = 0; i < 100000; i++)
		o += (size_t)snprintf(t + o, cap - o, "%s{\"id\":\"r%u\"}", i ? "," : "", i);
	o += (size_t)snprintf(t + o, cap - o, "]}");
	assert_int_equal(policy_json_parse_text(t, o, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "policy: rules: 100000 rules, at most 65536");
	free(t);

	/* 10 MB: refused unread */
	t = calloc(1, 10u << 20);
	assert_int_equal(policy_json_parse_text(t, 10u << 20, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "policy: 10485760 bytes, at most 4194304 (4 MiB)");
	char path[] = "/tmp/vigil-big-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, t, 10u << 20), 10u << 20);
	close(fd);
	assert_int_equal(policy_json_load_file(path, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ": 10485760 bytes, at most 4194304 (4 MiB)"));
	unlink(path);
	free(t);
	assert_int_equal(policy_json_load_file("/nonexistent/p.json", &s, err, sizeof(err)), -1);
	assert_string_equal(err, "policy: /nonexistent/p.json: No such file or directory");
}

static void times(void **state)
{
	int64_t s;
	uint32_t ns;
	char b[64];
	assert_int_equal(policy_parse_rfc3339("1970-01-01T00:00:00Z", &s, &ns), 0);
	assert_int_equal(s, 0);
	assert_int_equal(policy_parse_rfc3339("2001-02-03T04:05:06Z", &s, &ns), 0);
	assert_int_equal(s, 981173106);
	assert_int_equal(policy_parse_rfc3339("2000-02-29t23:59:59.123456789123-00:30", &s, &ns), 0);
	assert_int_equal(ns, 123456789);
	policy_format_rfc3339(981173106, 500000000, b, sizeof(b));
	assert_string_equal(b, "2001-02-03T04:05:06.5Z");
	assert_int_equal(policy_parse_rfc3339("2001-02-03T04:05:06", &s, &ns), -1);
	assert_int_equal(policy_parse_rfc3339("1900-02-29T00:00:00Z", &s, &ns), -1);
	assert_int_equal(policy_parse_rfc3339("2001-13-01T00:00:00Z", &s, &ns), -1);
	assert_int_equal(policy_parse_rfc3339("2001-01-01T24:00:00Z", &s, &ns), -1);
}

static void live_change(void **state)
{
	struct policy_spec a, b;
	const char *base =
	    "{\"rules\":[{\"id\":\"c\",\"resource\":\"cpuid\",\"leaf\":1,\"verdict\":\"redirect\","
	    "\"registers\":{\"ecx\":0}},{\"id\":\"p\",\"resource\":\"pio\",\"ports\":1,\"verdict\":\"deny\"}]"
	    "}";
	assert_int_equal(parse(base, &a), 0);
	assert_int_equal(
	    parse("{\"rules\":[{\"id\":\"c\",\"resource\":\"cpuid\",\"leaf\":1,\"verdict\":\"redirect\","
		  "\"registers\":{\"ecx\":0}}]}",
		  &b),
	    0);
	assert_int_equal(policy_check_live_change(&a, &b, err, sizeof(err)), 0); /* pio may change */
	policy_spec_free(&b);
	assert_int_equal(
	    parse("{\"rules\":[{\"id\":\"c\",\"resource\":\"cpuid\",\"leaf\":1,\"verdict\":\"redirect\","
		  "\"registers\":{\"ecx\":1}}]}",
		  &b),
	    0);
	assert_int_equal(policy_check_live_change(&a, &b, err, sizeof(err)), -1);
	assert_string_equal(err, "policy: rule \"c\": cpuid rules cannot change once the VM has started");
	policy_spec_free(&b);
	assert_int_equal(parse("{}", &b), 0);
	assert_int_equal(policy_check_live_change(&a, &b, err, sizeof(err)), -1);
	assert_int_equal(
	    parse(
		"{\"rules\":[{\"id\":\"t\",\"resource\":\"rtc\",\"verdict\":\"redirect\",\"offset_s\":-60}]}",
		&b),
	    0);
	struct policy_spec none = {0};
	assert_int_equal(policy_check_live_change(&none, &b, err, sizeof(err)), -1);
	assert_string_equal(err, "policy: rule \"t\": rtc rules cannot change once the VM has started");
	policy_spec_free(&a);
	policy_spec_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_field),     cmocka_unit_test(round_trip),
	    cmocka_unit_test(default_policy),  cmocka_unit_test(bad_policies),
	    cmocka_unit_test(overlay_checked), cmocka_unit_test(sizes),
	    cmocka_unit_test(times),	       cmocka_unit_test(live_change),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
