/* svm_stub — stand-ins for the SVM backend (src/svm, built on its own
 * branch) so that vigil-metal links and its platform half can be tested
 * before the two meet. Every symbol is weak: the real backend's win as
 * soon as its objects are in the image, and this file can then go. The
 * CPU check is real enough for the "no AMD-V" case; creating the backend
 * fails with a line. */
#include <stdint.h>

#include "core/errmsg.h"
#include "svm/svm.h"

static void cpuid(uint32_t leaf, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

__attribute__((weak)) int svm_check_cpu(char *err, size_t errlen)
{
	uint32_t r[4];
	cpuid(0x80000000u, r);
	if (r[0] < 0x8000000au)
		return errmsg(err, errlen, "this CPU has no AMD-V (SVM)");
	cpuid(0x80000001u, r);
	if (!(r[2] & (1u << 2)))
		return errmsg(err, errlen, "this CPU has no AMD-V (SVM)");
	cpuid(0x8000000au, r);
	if (!(r[3] & 1u))
		return errmsg(err, errlen, "this CPU has AMD-V but no nested paging (NPT)");
	return 0;
}

__attribute__((weak)) int svm_enable_cpu(char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	return 0;
}

__attribute__((weak)) struct svm *svm_create(struct vm *vm, unsigned ncpus, char *err, size_t errlen)
{
	(void)vm;
	(void)ncpus;
	errmsg(err, errlen, "this image was built without the SVM backend (src/svm)");
	return NULL;
}

__attribute__((weak)) int svm_set_boot_state(struct svm *s, unsigned cpu, const struct x86_boot_cpu *b)
{
	(void)s;
	(void)cpu;
	(void)b;
	return -1;
}

__attribute__((weak)) struct hv_ops svm_hv_ops(struct svm *s)
{
	return (struct hv_ops){ .name = "svm", .hv = s };
}

__attribute__((weak)) struct irq_line svm_irq_line(struct svm *s, uint32_t gsi)
{
	return (struct irq_line){ .set = NULL, .ctx = s, .gsi = gsi };
}
