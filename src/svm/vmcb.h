/* vmcb — the layout of AMD-V's virtual machine control block (AMD64 APM
 * vol. 2, appendix B): byte offsets into the 4 KiB page, the intercept
 * bits, the exit codes. Raw offsets rather than a struct: the table in the
 * manual is by offset, and so are the checks against it. */
#ifndef VIGIL_SVM_VMCB_H
#define VIGIL_SVM_VMCB_H

#include <stdint.h>

/* --- control area --- */
#define VMCB_INTERCEPT_CR     0x000 /* reads 15:0, writes 31:16 */
#define VMCB_INTERCEPT_DR     0x004
#define VMCB_INTERCEPT_EXC    0x008
#define VMCB_INTERCEPT_MISC1  0x00c
#define VMCB_INTERCEPT_MISC2  0x010
#define VMCB_IOPM_BASE        0x040
#define VMCB_MSRPM_BASE       0x048
#define VMCB_TSC_OFFSET       0x050
#define VMCB_ASID             0x058 /* u32 */
#define VMCB_TLB_CONTROL      0x05c /* u8 */
#define VMCB_INT_CTL          0x060
#define VMCB_INT_SHADOW       0x068
#define VMCB_EXITCODE         0x070
#define VMCB_EXITINFO1        0x078
#define VMCB_EXITINFO2        0x080
#define VMCB_EXITINTINFO      0x088
#define VMCB_NP_ENABLE        0x090
#define VMCB_EVENTINJ         0x0a8
#define VMCB_N_CR3            0x0b0
#define VMCB_CLEAN            0x0c0 /* u32 */
#define VMCB_NRIP             0x0c8

/* --- state save area --- */
#define VMCB_ES     0x400 /* each segment: selector u16, attrib u16, limit u32, base u64 */
#define VMCB_CS     0x410
#define VMCB_SS     0x420
#define VMCB_DS     0x430
#define VMCB_FS     0x440
#define VMCB_GS     0x450
#define VMCB_GDTR   0x460
#define VMCB_LDTR   0x470
#define VMCB_IDTR   0x480
#define VMCB_TR     0x490
#define VMCB_CPL    0x4cb /* u8 */
#define VMCB_EFER   0x4d0
#define VMCB_CR4    0x548
#define VMCB_CR3    0x550
#define VMCB_CR0    0x558
#define VMCB_DR7    0x560
#define VMCB_DR6    0x568
#define VMCB_RFLAGS 0x570
#define VMCB_RIP    0x578
#define VMCB_RSP    0x5d8
#define VMCB_RAX    0x5f8
#define VMCB_STAR   0x600
#define VMCB_LSTAR  0x608
#define VMCB_CSTAR  0x610
#define VMCB_SFMASK 0x618
#define VMCB_KERNEL_GS_BASE 0x620
#define VMCB_SYSENTER_CS    0x628
#define VMCB_SYSENTER_ESP   0x630
#define VMCB_SYSENTER_EIP   0x638
#define VMCB_CR2    0x640
#define VMCB_G_PAT  0x668
#define VMCB_DBGCTL 0x670

/* MISC1 intercept bits */
#define ICPT_INTR     (1u << 0)
#define ICPT_NMI      (1u << 1)
#define ICPT_VINTR    (1u << 4)
#define ICPT_CPUID    (1u << 18)
#define ICPT_INVD     (1u << 22)
#define ICPT_HLT      (1u << 24)
#define ICPT_INVLPGA  (1u << 26)
#define ICPT_IOIO     (1u << 27)
#define ICPT_MSR      (1u << 28)
#define ICPT_SHUTDOWN (1u << 31)
/* MISC2 */
#define ICPT_VMRUN    (1u << 0)
#define ICPT_VMMCALL  (1u << 1)
#define ICPT_VMLOAD   (1u << 2)
#define ICPT_VMSAVE   (1u << 3)
#define ICPT_STGI     (1u << 4)
#define ICPT_CLGI     (1u << 5)
#define ICPT_SKINIT   (1u << 6)
#define ICPT_MONITOR  (1u << 10)
#define ICPT_MWAIT    (1u << 11)
#define ICPT_MWAIT_C  (1u << 12)

#define INT_CTL_V_IRQ          (1ull << 8)
#define INT_CTL_V_IGN_TPR      (1ull << 20)
#define INT_CTL_V_INTR_MASKING (1ull << 24)

/* EVENTINJ / EXITINTINFO */
#define EVT_VALID     (1ull << 31)
#define EVT_ERR_VALID (1ull << 11)
#define EVT_TYPE_INTR (0ull << 8)
#define EVT_TYPE_NMI  (2ull << 8)
#define EVT_TYPE_EXC  (3ull << 8)

/* exit codes */
#define SVM_EXIT_EXC_BASE 0x040
#define SVM_EXIT_INTR     0x060
#define SVM_EXIT_NMI      0x061
#define SVM_EXIT_SMI      0x062
#define SVM_EXIT_INIT     0x063
#define SVM_EXIT_VINTR    0x064
#define SVM_EXIT_CPUID    0x072
#define SVM_EXIT_INVD     0x076
#define SVM_EXIT_HLT      0x078
#define SVM_EXIT_INVLPGA  0x07a
#define SVM_EXIT_IOIO     0x07b
#define SVM_EXIT_MSR      0x07c
#define SVM_EXIT_SHUTDOWN 0x07f
#define SVM_EXIT_VMRUN    0x080
#define SVM_EXIT_VMMCALL  0x081
#define SVM_EXIT_VMLOAD   0x082
#define SVM_EXIT_VMSAVE   0x083
#define SVM_EXIT_STGI     0x084
#define SVM_EXIT_CLGI     0x085
#define SVM_EXIT_SKINIT   0x086
#define SVM_EXIT_MONITOR  0x08a
#define SVM_EXIT_MWAIT    0x08b
#define SVM_EXIT_MWAIT_C  0x08c
#define SVM_EXIT_NPF      0x400
#define SVM_EXIT_INVALID  0xffffffffffffffffull

/* IOIO EXITINFO1 */
#define IOIO_IN   (1u << 0)
#define IOIO_STR  (1u << 2)
#define IOIO_REP  (1u << 3)

/* MSRs of the host side */
#define MSR_EFER        0xc0000080u
#define MSR_VM_CR       0xc0010114u
#define MSR_VM_HSAVE_PA 0xc0010117u
#define EFER_SCE   (1ull << 0)
#define EFER_LME   (1ull << 8)
#define EFER_LMA   (1ull << 10)
#define EFER_NXE   (1ull << 11)
#define EFER_SVME  (1ull << 12)
#define EFER_LMSLE (1ull << 13)
#define EFER_FFXSR (1ull << 14)
#define EFER_TCE   (1ull << 15)
#define VM_CR_SVMDIS (1ull << 4)

static inline uint64_t vmcb_r64(const uint8_t *v, unsigned off)
{
	return *(const uint64_t *)(v + off);
}
static inline void vmcb_w64(uint8_t *v, unsigned off, uint64_t x)
{
	*(uint64_t *)(v + off) = x;
}
static inline uint32_t vmcb_r32(const uint8_t *v, unsigned off)
{
	return *(const uint32_t *)(v + off);
}
static inline void vmcb_w32(uint8_t *v, unsigned off, uint32_t x)
{
	*(uint32_t *)(v + off) = x;
}

#endif
