/* ELF vmlinux loading through the PVH direct boot ABI: load the PT_LOAD
 * segments at their physical addresses, find the XEN_ELFNOTE_PHYS32_ENTRY
 * note, and enter it in 32-bit protected mode without paging, EBX pointing
 * at a struct hvm_start_info. Every ELF offset, size and count is checked
 * against the file before use. */
#include <elf.h>
#include <stdio.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "core/errmsg.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578u
#define PVH_MEMMAP_MAX 64

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

/* True if [off, off+size) lies inside a file of `len` bytes. */
static bool in_file(size_t len, uint64_t off, uint64_t size)
{
	return off <= len && size <= len - off;
}

static uint64_t align4(uint64_t v)
{
	return (v + 3) & ~3ULL;
}

/* Walks one PT_NOTE segment looking for the PVH entry; 0 if absent. */
static uint64_t find_pvh_entry(const uint8_t *note, uint64_t size)
{
	uint64_t off = 0;

	while (size - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr h;
		memcpy(&h, note + off, sizeof(h));
		uint64_t name_off = off + sizeof(h);
		uint64_t desc_off = name_off + align4(h.n_namesz);
		uint64_t next = desc_off + align4(h.n_descsz);
		if (desc_off > size || next > size || next <= off)
			return 0;
		if (h.n_type == XEN_ELFNOTE_PHYS32_ENTRY && h.n_namesz == 4 &&
		    memcmp(note + name_off, "Xen", 4) == 0) {
			if (h.n_descsz == 4) {
				uint32_t e;
				memcpy(&e, note + desc_off, 4);
				return e;
			}
			if (h.n_descsz == 8) {
				uint64_t e;
				memcpy(&e, note + desc_off, 8);
				return e;
			}
			return 0;
		}
		off = next;
	}
	return 0;
}

static Elf64_Phdr phdr(const uint8_t *img, const Elf64_Ehdr *eh, unsigned i)
{
	Elf64_Phdr ph;
	memcpy(&ph, img + eh->e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
	return ph;
}

/* The PVH entry from the first note segment that has one; 0 if none. */
static int find_entry(const uint8_t *img, size_t len, const Elf64_Ehdr *eh, uint64_t *entry, char *err,
		      size_t errlen)
{
	*entry = 0;
	for (unsigned i = 0; i < eh->e_phnum && !*entry; i++) {
		Elf64_Phdr ph = phdr(img, eh, i);
		if (ph.p_type != PT_NOTE)
			continue;
		if (!in_file(len, ph.p_offset, ph.p_filesz))
			return errmsg(err, errlen, "ELF note segment %u lies outside the file", i);
		*entry = find_pvh_entry(img + ph.p_offset, ph.p_filesz);
	}
	if (!*entry)
		return errmsg(err, errlen, "ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)");
	return 0;
}

static int load_segments(const struct gmem *m, const uint8_t *img, size_t len, const Elf64_Ehdr *eh,
			 uint64_t *end, char *err, size_t errlen)
{
	*end = 0;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph = phdr(img, eh, i);
		if (ph.p_type != PT_LOAD)
			continue;
		if (!in_file(len, ph.p_offset, ph.p_filesz) || ph.p_filesz > ph.p_memsz)
			return errmsg(err, errlen, "ELF segment %u lies outside the file", i);
		if (ph.p_memsz == 0)
			continue;
		uint8_t *dst = gmem_ptr(m, ph.p_paddr, ph.p_memsz);
		if (!dst || ph.p_paddr < LAYOUT_HIMEM)
			return errmsg(err, errlen,
				    "ELF segment %u (0x%llx+0x%llx) does not fit in guest RAM above 1 MiB; "
				    "raise --mem",
				    i, (unsigned long long)ph.p_paddr, (unsigned long long)ph.p_memsz);
		memcpy(dst, img + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (ph.p_paddr + ph.p_memsz > *end)
			*end = ph.p_paddr + ph.p_memsz;
	}
	return 0;
}

static int write_start_info(const struct gmem *m, const struct boot_config *cfg, uint64_t initrd,
			    char *err, size_t errlen)
{
	struct e820_entry map[PVH_MEMMAP_MAX];
	struct hvm_memmap_entry mm[PVH_MEMMAP_MAX];
	int n = e820_build(m, map, PVH_MEMMAP_MAX);
	if (n < 0)
		return errmsg(err, errlen, "guest memory map too large for PVH");
	for (int i = 0; i < n; i++)
		mm[i] = (struct hvm_memmap_entry){ map[i].addr, map[i].size, map[i].type, 0 };

	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = 1,
		.cmdline_paddr = LAYOUT_CMDLINE,
		.rsdp_paddr = cfg->rsdp,
		.memmap_paddr = LAYOUT_PVH_MEMMAP,
		.memmap_entries = (uint32_t)n,
	};
	struct hvm_modlist_entry mod = { .paddr = initrd, .size = cfg->initrd_len };
	uint64_t mod_gpa = LAYOUT_PVH_INFO + 0x40;
	if (cfg->initrd) {
		si.nr_modules = 1;
		si.modlist_paddr = mod_gpa;
	}
	if (gmem_write(m, LAYOUT_PVH_INFO, &si, sizeof(si)) < 0 ||
	    gmem_write(m, mod_gpa, &mod, sizeof(mod)) < 0 ||
	    gmem_write(m, LAYOUT_PVH_MEMMAP, mm, (size_t)n * sizeof(mm[0])) < 0)
		return errmsg(err, errlen, "guest memory too small for the PVH start info");
	return 0;
}

int boot_pvh_load(const struct gmem *m, const struct boot_config *cfg, struct boot_result *res,
		  char *err, size_t errlen)
{
	const uint8_t *img = cfg->kernel;
	size_t len = cfg->kernel_len;
	Elf64_Ehdr eh;

	if (len < sizeof(eh))
		return errmsg(err, errlen, "ELF kernel is truncated (%zu bytes)", len);
	memcpy(&eh, img, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64)
		return errmsg(err, errlen, "ELF kernel is not a little-endian x86-64 ELF64 file");
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 ||
	    !in_file(len, eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr)))
		return errmsg(err, errlen, "ELF kernel's program headers are missing or outside the file");

	uint64_t entry, end;
	if (find_entry(img, len, &eh, &entry, err, errlen) < 0 ||
	    load_segments(m, img, len, &eh, &end, err, errlen) < 0)
		return -1;
	if (!end)
		return errmsg(err, errlen, "ELF kernel has no loadable segment");
	if (!gmem_valid(m, entry, 1))
		return errmsg(err, errlen, "ELF kernel's PVH entry 0x%llx is outside guest RAM",
			    (unsigned long long)entry);
	res->kernel_end = end;

	if (boot_write_cmdline(m, cfg->cmdline, LAYOUT_CMDLINE_MAX, err, errlen) < 0)
		return -1;
	if (boot_place_initrd(m, cfg, end, LAYOUT_MEM32_END, &res->initrd_addr, err, errlen) < 0)
		return -1;
	if (write_start_info(m, cfg, res->initrd_addr, err, errlen) < 0)
		return -1;

	res->kind = BOOT_PVH;
	boot_cpu_protected_mode(m, &res->cpu);
	res->cpu.rip = entry;
	res->cpu.rbx = LAYOUT_PVH_INFO;
	return 0;
}
