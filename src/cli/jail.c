/* jail — `vigil jail`: see jail.h. The parent checks the input, makes the
 * cgroups and their limits, then forks the jailed child into a new PID
 * namespace and waits for it; the child builds the jail in its own mount
 * namespace, gives up root and execs vigil. */
#define _GNU_SOURCE
#include "cli/jail.h"
#include "vmm/config.h"

#include <errno.h>
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>


#include "api/mhd.h"
#include "cli/parse.h"

#define JAIL_MAX_CGROUPS 32
#define JAIL_MAX_FILES 64
#define JAIL_EXEC_NAME "vigil" /* <chroot-base>/vigil/<id>, the copy's name */

struct jail_cgroup {
	char key[64];    /* "memory.max" */
	char value[128]; /* "268435456" */
	char dir[PATH_MAX];
};

struct jail_opts {
	const char *id, *chroot_base, *exec_file, *netns, *parent_cgroup;
	unsigned uid, gid, cg_version;
	long long rl_fsize, rl_nofile; /* -1: not given */
	struct jail_cgroup cg[JAIL_MAX_CGROUPS];
	int ncg;
	char v2dir[PATH_MAX]; /* the per-VM v2 cgroup ("" when none) */
	char **cmd;           /* the vigil argv after "--" */
	char **argv;          /* what vigil gets: cmd, with --id=<id> after "run" */
	char id_arg[80];
	const char *files[JAIL_MAX_FILES]; /* host files to bring in */
	int nfiles;
	const char *dirs[JAIL_MAX_FILES]; /* parent dirs of sockets to make */
	int ndirs;
	char root[PATH_MAX];
	bool own_exe; /* the jail runs this vigil: bring its shared objects */
};

__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("vigil jail: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return -1;
}

/* A path brought into the jail keeps its name: the jailed vigil opens the
 * same string it was given, now resolved under the jail's root. ".." could
 * climb out of the jail directory while it is being built: refused. */
int jail_path_ok(const char *p)
{
	if (!*p || strlen(p) >= PATH_MAX / 2)
		return 0;
	for (const char *s = p; *s;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 2 && s[0] == '.' && s[1] == '.')
			return 0;
		s += n;
		while (*s == '/')
			s++;
	}
	return 1;
}

static int add_file(struct jail_opts *o, const char *p, int is_dir_of)
{
	if (!jail_path_ok(p))
		return bad("'%s': a path brought into the jail must not contain '..'", p);
	if (is_dir_of) {
		const char *slash = strrchr(p, '/');
		if (!slash || slash == p + strspn(p, "/") - 1)
			return bad("--api-sock %s: name a directory for it (/run/api.sock): the jail's root is not the uid's to write", p);
		if (o->ndirs == JAIL_MAX_FILES)
			return bad("too many socket paths");
		o->dirs[o->ndirs++] = p;
		return 0;
	}
	if (o->nfiles == JAIL_MAX_FILES)
		return bad("too many files to bring into the jail");
	o->files[o->nfiles++] = p;
	return 0;
}

/* The value of `path=` in a --disk spec, NUL-cut in a copy we keep. */
static const char *disk_path(const char *spec)
{
	static char buf[JAIL_MAX_FILES][PATH_MAX];
	static int used;
	for (const char *s = spec; s && *s;) {
		const char *e = strchr(s, ',');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n > 5 && strncmp(s, "path=", 5) == 0 && n - 5 < PATH_MAX && used < JAIL_MAX_FILES) {
			memcpy(buf[used], s + 5, n - 5);
			buf[used][n - 5] = '\0';
			return buf[used++];
		}
		s = e ? e + 1 : NULL;
	}
	return NULL;
}

/* Which files of the vigil command line the jail must hold. Other paths
 * (--config-file and what it names, --vsock uds_path, --trace, console
 * files) are taken as paths inside the jail, placed there by the user, as
 * Firecracker expects for everything. */
static int scan_cmd(struct jail_opts *o)
{
	static const struct {
		const char *opt;
		int dir_of;
	} known[] = {
		{ "--kernel", 0 }, { "--initrd", 0 }, { "--policy", 0 }, { "--disk", 0 }, { "--api-sock", 1 },
	};
	for (int i = 1; o->cmd[i]; i++) {
		const char *a = o->cmd[i];
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
			size_t n = strlen(known[k].opt);
			const char *val = NULL;
			if (strcmp(a, known[k].opt) == 0 && o->cmd[i + 1])
				val = o->cmd[++i];
			else if (strncmp(a, known[k].opt, n) == 0 && a[n] == '=')
				val = a + n + 1;
			if (!val)
				continue;
			if (strcmp(known[k].opt, "--disk") == 0 && !(val = disk_path(val)))
				break; /* vigil itself reports the bad spec */
			if (add_file(o, val, known[k].dir_of) < 0)
				return -1;
			break;
		}
	}
	return 0;
}

static int parse_rlimit(struct jail_opts *o, const char *s)
{
	const char *eq = strchr(s, '=');
	unsigned v;
	if (!eq || parse_uint(eq + 1, 0, UINT_MAX, &v) < 0)
		return bad("--resource-limit '%s': expected fsize=N or no-file=N", s);
	if ((size_t)(eq - s) == 5 && strncmp(s, "fsize", 5) == 0)
		o->rl_fsize = v;
	else if ((size_t)(eq - s) == 7 && strncmp(s, "no-file", 7) == 0)
		o->rl_nofile = v;
	else
		return bad("--resource-limit '%s': unknown resource (fsize, no-file)", s);
	return 0;
}

static int parse_cgroup(struct jail_opts *o, const char *s)
{
	const char *eq = strchr(s, '=');
	if (o->ncg == JAIL_MAX_CGROUPS)
		return bad("too many --cgroup");
	if (!eq || eq == s || (size_t)(eq - s) >= sizeof(o->cg[0].key) || !eq[1] ||
	    strlen(eq + 1) >= sizeof(o->cg[0].value))
		return bad("--cgroup '%s': expected FILE=VALUE such as memory.max=256M", s);
	struct jail_cgroup *c = &o->cg[o->ncg];
	memcpy(c->key, s, (size_t)(eq - s));
	c->key[eq - s] = '\0';
	strcpy(c->value, eq + 1);
	/* A controller file such as memory.max: one name, a controller before
	 * the dot, and never the cgroup.* core files (cgroup.procs would move
	 * arbitrary processes). */
	const char *dot = strchr(c->key, '.');
	if (!dot || dot == c->key || !dot[1] || strchr(c->key, '/') || strncmp(c->key, "cgroup.", 7) == 0)
		return bad("--cgroup '%s': FILE must be a controller file such as memory.max", s);
	for (const char *p = c->value; *p; p++)
		if (*p == '\n')
			return bad("--cgroup '%s': VALUE must be one line", s);
	o->ncg++;
	return 0;
}

static int parse(int argc, char **argv, struct jail_opts *o)
{
	enum { O_ID = 256, O_UID, O_GID, O_BASE, O_EXEC, O_CGROUP, O_CGV, O_PARENT, O_NETNS, O_PIDNS, O_RLIMIT };
	static const struct option longopts[] = {
		{ "id", required_argument, NULL, O_ID },
		{ "uid", required_argument, NULL, O_UID },
		{ "gid", required_argument, NULL, O_GID },
		{ "chroot-base", required_argument, NULL, O_BASE },
		{ "chroot-base-dir", required_argument, NULL, O_BASE },
		{ "exec-file", required_argument, NULL, O_EXEC },
		{ "cgroup", required_argument, NULL, O_CGROUP },
		{ "cgroup-version", required_argument, NULL, O_CGV },
		{ "parent-cgroup", required_argument, NULL, O_PARENT },
		{ "netns", required_argument, NULL, O_NETNS },
		{ "new-pid-ns", no_argument, NULL, O_PIDNS },
		{ "resource-limit", required_argument, NULL, O_RLIMIT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_uid = false, have_gid = false;
	o->rl_fsize = o->rl_nofile = -1;
	o->cg_version = 2;
	o->parent_cgroup = JAIL_EXEC_NAME;
	o->exec_file = "/proc/self/exe";
	o->own_exe = true;
	optind = 1;
	opterr = 0;
	for (;;) {
		/* "+": stop at the first word that is not ours ("--" or vigil). */
		int ch = getopt_long(argc, argv, "+:h", longopts, NULL);
		if (ch == -1)
			break;
		switch (ch) {
		case O_ID: o->id = optarg; break;
		case O_UID:
			if (parse_uint(optarg, 0, 0xfffffffe, &o->uid) < 0)
				return bad("--uid '%s': expected a number", optarg);
			have_uid = true;
			break;
		case O_GID:
			if (parse_uint(optarg, 0, 0xfffffffe, &o->gid) < 0)
				return bad("--gid '%s': expected a number", optarg);
			have_gid = true;
			break;
		case O_BASE: o->chroot_base = optarg; break;
		case O_EXEC:
			o->exec_file = optarg;
			o->own_exe = false;
			break;
		case O_CGROUP:
			if (parse_cgroup(o, optarg) < 0)
				return -1;
			break;
		case O_CGV:
			if (parse_uint(optarg, 1, 2, &o->cg_version) < 0)
				return bad("--cgroup-version '%s': expected 1 or 2", optarg);
			break;
		case O_PARENT:
			if (!vmcfg_instance_id_ok(optarg))
				return bad("--parent-cgroup '%s': only letters, digits and '-'", optarg);
			o->parent_cgroup = optarg;
			break;
		case O_NETNS: o->netns = optarg; break;
		case O_PIDNS: break; /* always: the parent must outlive vigil to clean up */
		case O_RLIMIT:
			if (parse_rlimit(o, optarg) < 0)
				return -1;
			break;
		case 'h':
			printf("usage: vigil jail --id ID --uid U --gid G --chroot-base DIR [--exec-file FILE]\n"
			       "         [--cgroup FILE=VALUE]... [--cgroup-version 1|2] [--parent-cgroup NAME]\n"
			       "         [--netns PATH] [--resource-limit fsize=N|no-file=N]... -- vigil run ...\n");
			exit(0);
		case ':': return bad("%s needs a value", argv[optind - 1]);
		default: return bad("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (!o->id)
		return bad("missing --id");
	if (!vmcfg_instance_id_ok(o->id))
		return bad("--id '%s': 1 to 64 characters, only letters, digits and '-'", o->id);
	if (!have_uid || !have_gid)
		return bad("missing --uid or --gid");
	if (!o->chroot_base)
		return bad("missing --chroot-base");
	struct stat st;
	if (stat(o->chroot_base, &st) < 0 || !S_ISDIR(st.st_mode))
		return bad("--chroot-base '%s' is not a directory", o->chroot_base);
	if (o->chroot_base[0] != '/')
		return bad("--chroot-base '%s' must be an absolute path", o->chroot_base);
	if (optind >= argc)
		return bad("missing the vigil command after '--' (-- vigil run ...)");
	o->cmd = argv + optind;
	if (!o->cmd[1] || strcmp(o->cmd[1], "run") != 0)
		return bad("the jailed command must be 'vigil run ...'");
	int n = snprintf(o->root, sizeof(o->root), "%s/%s/%s/root", o->chroot_base, JAIL_EXEC_NAME, o->id);
	if (n < 0 || (size_t)n >= sizeof(o->root))
		return bad("--chroot-base path too long");
	if (scan_cmd(o) < 0)
		return -1;
	/* Firecracker's jailer passes --id to Firecracker; so does this one,
	 * unless the command line names its own. */
	bool has_id = false;
	int n_cmd = 0;
	for (; o->cmd[n_cmd]; n_cmd++)
		has_id |= strcmp(o->cmd[n_cmd], "--id") == 0 || strncmp(o->cmd[n_cmd], "--id=", 5) == 0;
	o->argv = calloc((size_t)n_cmd + 2, sizeof(char *));
	if (!o->argv)
		return bad("out of memory");
	snprintf(o->id_arg, sizeof(o->id_arg), "--id=%s", o->id);
	int k = 0;
	o->argv[k++] = o->cmd[0];
	o->argv[k++] = o->cmd[1];
	if (!has_id)
		o->argv[k++] = o->id_arg;
	for (int i = 2; i < n_cmd; i++)
		o->argv[k++] = o->cmd[i];
	o->argv[k] = NULL;
	return 0;
}

/* ---- the parent: cgroups ---- */

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = strlen(s);
	ssize_t w = write(fd, s, n);
	int e = errno;
	close(fd);
	errno = e;
	return w == (ssize_t)n ? 0 : -1;
}

/* Where a cgroup hierarchy is mounted: v2 ("cgroup2"), or the v1 one whose
 * mount options name `controller`. */
static int cgroup_mount(unsigned version, const char *controller, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/mounts", "re");
	char dev[256], mnt[PATH_MAX], type[64], opts[1024];
	int found = -1;
	if (!f)
		return -1;
	while (found < 0 && fscanf(f, "%255s %4095s %63s %1023s %*d %*d", dev, mnt, type, opts) == 4) {
		if (version == 2 && strcmp(type, "cgroup2") == 0)
			found = 0;
		if (version == 1 && strcmp(type, "cgroup") == 0) {
			for (char *save = NULL, *t = strtok_r(opts, ",", &save); t; t = strtok_r(NULL, ",", &save))
				if (strcmp(t, controller) == 0)
					found = 0;
		}
		if (found == 0 && (size_t)snprintf(out, len, "%s", mnt) >= len)
			found = -1;
	}
	fclose(f);
	return found;
}

/* v2: the controller must be offered by the root and enabled down to the
 * VM's parent cgroup, or its files do not exist in the VM's cgroup. */
static int v2_enable(const char *mnt, const char *parent, const char *ctl)
{
	char path[PATH_MAX + 128], buf[512] = "";
	snprintf(path, sizeof(path), "%s/cgroup.controllers", mnt);
	FILE *f = fopen(path, "re");
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	bool offered = false;
	for (char *save = NULL, *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
		offered |= strcmp(t, ctl) == 0;
	if (!offered)
		return bad("cgroup v2 at %s does not offer the '%s' controller (bound to a v1 hierarchy?)", mnt, ctl);
	char plus[80];
	snprintf(plus, sizeof(plus), "+%s", ctl);
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", mnt);
	if (write_file(path, plus) < 0)
		return bad("%s: enabling '%s': %s", path, ctl, strerror(errno));
	snprintf(path, sizeof(path), "%s/%s/cgroup.subtree_control", mnt, parent);
	if (write_file(path, plus) < 0)
		return bad("%s: enabling '%s': %s", path, ctl, strerror(errno));
	return 0;
}

static int mkdir_cg(const char *mnt, const char *parent, const char *id, char *dir, size_t len)
{
	char p[PATH_MAX + 80];
	snprintf(p, sizeof(p), "%s/%s", mnt, parent);
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return bad("%s: %s", p, strerror(errno));
	if ((size_t)snprintf(dir, len, "%s/%s/%s", mnt, parent, id) >= len)
		return bad("cgroup path too long");
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return bad("%s: %s", dir, strerror(errno));
	return 0;
}

static void cgroups_remove(struct jail_opts *o)
{
	for (int i = 0; i < o->ncg; i++)
		if (o->cg[i].dir[0] && strcmp(o->cg[i].dir, o->v2dir) != 0)
			rmdir(o->cg[i].dir); /* v1 dirs may repeat: ENOENT is fine */
	if (o->v2dir[0])
		rmdir(o->v2dir);
}

/* Makes the VM's cgroups: always a v2 one when cgroup2 is mounted (so every
 * jailed VM is accounted on its own), plus each --cgroup's, and writes the
 * limits. The child joins them before it execs. */
static int cgroups_make(struct jail_opts *o)
{
	char mnt[PATH_MAX];
	if (cgroup_mount(2, NULL, mnt, sizeof(mnt)) == 0) {
		if (mkdir_cg(mnt, o->parent_cgroup, o->id, o->v2dir, sizeof(o->v2dir)) < 0)
			return -1;
	} else if (o->cg_version == 2 && o->ncg > 0) {
		return bad("--cgroup: no cgroup v2 hierarchy is mounted (try --cgroup-version 1)");
	}
	for (int i = 0; i < o->ncg; i++) {
		struct jail_cgroup *c = &o->cg[i];
		char ctl[64], path[PATH_MAX + 80];
		snprintf(ctl, sizeof(ctl), "%.*s", (int)(strchr(c->key, '.') - c->key), c->key);
		if (o->cg_version == 2) {
			if (v2_enable(mnt, o->parent_cgroup, ctl) < 0)
				return -1;
			snprintf(c->dir, sizeof(c->dir), "%s", o->v2dir);
		} else {
			char m1[PATH_MAX];
			if (cgroup_mount(1, ctl, m1, sizeof(m1)) < 0)
				return bad("--cgroup %s: no cgroup v1 hierarchy has the '%s' controller", c->key, ctl);
			if (mkdir_cg(m1, o->parent_cgroup, o->id, c->dir, sizeof(c->dir)) < 0)
				return -1;
		}
		snprintf(path, sizeof(path), "%s/%s", c->dir, c->key);
		if (write_file(path, c->value) < 0)
			return bad("--cgroup %s=%s: %s: %s", c->key, c->value, path, strerror(errno));
	}
	return 0;
}

/* ---- the child: the jail ---- */

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("vigil jail: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	_exit(1);
}

/* The length of the jail root's path while the child builds it. */
static size_t root_len = SIZE_MAX; /* until then nothing is checked */

/* A directory in the jail, made or found. A previous jailed vigil could
 * write in the directories given to it (the API socket's) and leave a
 * symlink there: root must never follow one out of the jail (a chown of
 * /etc), so inside the root only real directories are walked. The previous
 * vigil is dead by then: its PID namespace died with it. */
static void jail_dir(const char *p)
{
	struct stat st;
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		die("%s: %s", p, strerror(errno));
	if (strlen(p) > root_len && (lstat(p, &st) < 0 || !S_ISDIR(st.st_mode)))
		die("%s: in the jail but not a directory (a symlink?)", p);
}

/* mkdir -p of the directories leading to `path` (and path itself if last). */
static void mkdirs(const char *path, bool last)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		jail_dir(p);
		*s = '/';
	}
	if (last)
		jail_dir(p);
}

static void copy_file(const char *src, const char *dst, mode_t mode)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		die("%s: %s", src, strerror(errno));
	unlink(dst);
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (out < 0)
		die("%s: %s", dst, strerror(errno));
	char buf[65536];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("%s: %s", src, strerror(errno));
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0)
				die("%s: %s", dst, strerror(errno));
			off += w;
		}
	}
	if (fchmod(out, mode) < 0 || close(out) < 0)
		die("%s: %s", dst, strerror(errno));
	close(in);
}

/* A host file into the jail under the same name. A hard link keeps one
 * inode (writes to a disk reach the host file); across filesystems a bind
 * mount does the same, living only as long as this mount namespace. A
 * symlink comes in as a symlink: it resolves inside the jail, never to the
 * host file it named outside. */
static void bring_in_as(const char *root, const char *src, const char *name, bool ro)
{
	char dst[PATH_MAX];
	struct stat st;
	snprintf(dst, sizeof(dst), "%s/%s", root, name[0] == '/' ? name + 1 : name);
	if (lstat(src, &st) < 0)
		die("%s: %s", src, strerror(errno));
	mkdirs(dst, false);
	unlink(dst);
	if (S_ISLNK(st.st_mode)) {
		char t[PATH_MAX];
		ssize_t n = readlink(src, t, sizeof(t) - 1);
		if (n < 0)
			die("%s: %s", src, strerror(errno));
		t[n] = '\0';
		if (symlink(t, dst) < 0)
			die("%s: %s", dst, strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		die("%s: not a regular file or block device", src);
	if (link(src, dst) == 0)
		return;
	if (errno != EXDEV && errno != EPERM)
		die("linking %s into the jail: %s", src, strerror(errno));
	int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		die("%s: %s", dst, strerror(errno));
	close(fd);
	if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
		die("bind-mounting %s into the jail: %s", src, strerror(errno));
	if (ro && mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		die("making %s read-only in the jail: %s", src, strerror(errno));
}

static void bring_in(const char *root, const char *src, bool ro)
{
	bring_in_as(root, src, src, ro);
}

/* The loader asks for sonames (libc.so.6), which are symlinks next to the
 * file the maps name (libjansson.so.4 -> libjansson.so.4.14.0). */
static void bring_in_sonames(const char *root, const char *lib)
{
	char dir[PATH_MAX], path[PATH_MAX * 2], t[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", lib);
	char *slash = strrchr(dir, '/');
	const char *base = strrchr(lib, '/') + 1;
	*slash = '\0';
	DIR *d = opendir(dir[0] ? dir : "/");
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_type != DT_LNK)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ssize_t n = readlink(path, t, sizeof(t) - 1);
		if (n <= 0)
			continue;
		t[n] = '\0';
		const char *tb = strrchr(t, '/');
		if (strcmp(tb ? tb + 1 : t, base) == 0 && jail_path_ok(path))
			bring_in(root, path, true);
	}
	closedir(d);
}

/* vigil is linked dynamically (Firecracker's jailer wants a static binary):
 * when the jail runs this very vigil, the shared objects this process has
 * mapped are the ones the copy will load, and PT_INTERP names the loader.
 * Each comes in at the path the loader will look for it. */
static void bring_in_libs(const char *root)
{
	/* libmicrohttpd (and GnuTLS behind it) is dlopen'd by the API server:
	 * load it here so that its objects are in the maps too. Without it
	 * the jailed vigil reports the missing library itself. */
	char err[256];
	(void)mhd_load(err, sizeof(err));
	FILE *f = fopen("/proc/self/maps", "re");
	char line[PATH_MAX + 128], exe[PATH_MAX], last[PATH_MAX] = "";
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (!f || n < 0)
		die("/proc/self/maps: %s", strerror(errno));
	exe[n] = '\0';
	while (fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/');
		if (!path)
			continue;
		path[strcspn(path, "\n")] = '\0';
		/* A file's mappings are adjacent lines: bring each in once. */
		if (strcmp(path, exe) != 0 && strcmp(path, last) != 0 && strstr(path, ".so") && access(path, R_OK) == 0) {
			bring_in(root, path, true);
			bring_in_sonames(root, path);
			snprintf(last, sizeof(last), "%s", path);
		}
	}
	fclose(f);

	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	Elf64_Ehdr eh;
	if (fd < 0 || pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr))
		die("reading vigil's ELF header: %s", strerror(errno));
	for (unsigned i = 0; i < eh.e_phnum && i < 64; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) != (ssize_t)sizeof(ph))
			break;
		if (ph.p_type != PT_INTERP || ph.p_filesz == 0 || ph.p_filesz >= PATH_MAX)
			continue;
		char interp[PATH_MAX], real[PATH_MAX];
		if (pread(fd, interp, ph.p_filesz, (off_t)ph.p_offset) != (ssize_t)ph.p_filesz)
			break;
		interp[ph.p_filesz] = '\0';
		if (interp[0] == '/' && jail_path_ok(interp) && realpath(interp, real))
			bring_in_as(root, real, interp, true);
	}
	close(fd);
}

static void make_node(const char *root, const char *name, mode_t mode, unsigned maj, unsigned min, uid_t uid,
		      gid_t gid, bool own)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s%s", root, name);
	mkdirs(p, false);
	unlink(p);
	if (mknod(p, S_IFCHR | mode, makedev(maj, min)) < 0)
		die("mknod %s: %s%s", p, strerror(errno), errno == EPERM ? " (CAP_MKNOD missing?)" : "");
	if (chmod(p, mode) < 0 || (own && chown(p, uid, gid) < 0))
		die("%s: %s", p, strerror(errno));
}

static void join_cgroup(const char *dir)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
	if (write_file(p, "0") < 0)
		die("joining cgroup %s: %s", dir, strerror(errno));
}

static void drop_privileges(const struct jail_opts *o)
{
	/* The bounding set needs CAP_SETPCAP to shrink: before setuid. An
	 * empty bounding set and locked NOROOT mean even uid 0 regains nothing
	 * at exec. */
	for (int c = 0; c <= 63; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			die("dropping capability %d: %s", c, strerror(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		die("clearing ambient capabilities: %s", strerror(errno));
	if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
					     SECBIT_KEEP_CAPS_LOCKED, 0, 0, 0) < 0)
		die("securebits: %s", strerror(errno));
	gid_t g = o->gid;
	if (setgroups(1, &g) < 0 || setresgid(o->gid, o->gid, o->gid) < 0)
		die("setgid %u: %s", o->gid, strerror(errno));
	if (setresuid(o->uid, o->uid, o->uid) < 0)
		die("setuid %u: %s", o->uid, strerror(errno));
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d) < 0)
		die("capset: %s", strerror(errno));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("no_new_privs: %s", strerror(errno));
}

static void set_rlimit(int res, long long v, const char *name)
{
	struct rlimit r = { .rlim_cur = (rlim_t)v, .rlim_max = (rlim_t)v };
	if (setrlimit(res, &r) < 0)
		die("setrlimit %s=%lld: %s", name, v, strerror(errno));
}

static void child(struct jail_opts *o)
{
	const char *root = o->root;
	if (o->netns) {
		int fd = open(o->netns, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			die("--netns %s: %s", o->netns, strerror(errno));
		close(fd);
	}
	if (o->v2dir[0])
		join_cgroup(o->v2dir);
	for (int i = 0; i < o->ncg; i++)
		if (strcmp(o->cg[i].dir, o->v2dir) != 0)
			join_cgroup(o->cg[i].dir);

	if (unshare(CLONE_NEWNS) < 0)
		die("unshare(CLONE_NEWNS): %s", strerror(errno));
	/* Nothing done here may reach the host's mounts, and no later host
	 * mount may reach the jail. */
	if (mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL) < 0)
		die("making / private: %s", strerror(errno));
	mkdirs(root, true);
	root_len = strlen(root);
	if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
		die("bind-mounting %s: %s", root, strerror(errno));

	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/%s", root, JAIL_EXEC_NAME);
	copy_file(o->exec_file, p, 0755);
	if (o->own_exe)
		bring_in_libs(root);
	for (int i = 0; i < o->nfiles; i++)
		bring_in(root, o->files[i], false);
	for (int i = 0; i < o->ndirs; i++) {
		snprintf(p, sizeof(p), "%s/%s", root, o->dirs[i][0] == '/' ? o->dirs[i] + 1 : o->dirs[i]);
		mkdirs(p, false);
		char *slash = strrchr(p, '/');
		if (slash && slash > p + strlen(root)) {
			*slash = '\0';
			if (lchown(p, o->uid, o->gid) < 0)
				die("%s: %s", p, strerror(errno));
		}
	}
	make_node(root, "/dev/kvm", 0600, 10, 232, o->uid, o->gid, true);
	make_node(root, "/dev/net/tun", 0600, 10, 200, o->uid, o->gid, true);
	make_node(root, "/dev/null", 0666, 1, 3, 0, 0, false);
	make_node(root, "/dev/urandom", 0666, 1, 9, 0, 0, false);

	if (chdir(root) < 0 || (unlink("old_root") < 0 && errno != ENOENT && errno != EISDIR) ||
	    (mkdir("old_root", 0700) < 0 && errno != EEXIST))
		die("%s/old_root: %s", root, strerror(errno));
	if (syscall(SYS_pivot_root, ".", "old_root") < 0)
		die("pivot_root into %s: %s", root, strerror(errno));
	if (chdir("/") < 0 || umount2("/old_root", MNT_DETACH) < 0 || rmdir("/old_root") < 0)
		die("leaving the old root: %s", strerror(errno));
	if (chroot(".") < 0) /* as Firecracker does, for good measure */
		die("chroot: %s", strerror(errno));

	set_rlimit(RLIMIT_NOFILE, o->rl_nofile >= 0 ? o->rl_nofile : 2048, "no-file");
	if (o->rl_fsize >= 0)
		set_rlimit(RLIMIT_FSIZE, o->rl_fsize, "fsize");
	drop_privileges(o);
	/* Should the jailer be killed, vigil goes too (set after the uid
	 * change, which clears it; an exec of vigil keeps it). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		die("PR_SET_PDEATHSIG: %s", strerror(errno));
	/* A descriptor inherited from whoever ran the jailer (a directory
	 * above all: fchdir to it is a way out) must not cross into the jail. */
	if (syscall(SYS_close_range, 3u, ~0u, 0u) < 0)
		for (int fd = 3; fd < 65536; fd++)
			close(fd);
	/* The host's environment says nothing the jailed vigil needs. */
	char *envp[] = { NULL };
	execve("/" JAIL_EXEC_NAME, o->argv, envp);
	die("exec /%s in the jail: %s", JAIL_EXEC_NAME, strerror(errno));
}

static volatile sig_atomic_t child_pid;

static void forward(int sig)
{
	/* vigil is PID 1 of its namespace: only signals it handles reach it,
	 * which is what a VMM wants (SIGTERM stops it cleanly). */
	if (child_pid > 0)
		kill(child_pid, sig);
}

int jail_main(int argc, char **argv)
{
	static struct jail_opts o; /* large: PATH_MAX buffers */
	memset(&o, 0, sizeof(o));
	if (parse(argc, argv, &o) < 0)
		return 1;
	if (access(o.exec_file, R_OK) < 0)
		return bad("--exec-file %s: %s", o.exec_file, strerror(errno)), 1;
	mkdirs(o.root, true); /* the pid file goes there before the child runs */
	if (cgroups_make(&o) < 0) {
		cgroups_remove(&o);
		return 1;
	}
	if (unshare(CLONE_NEWPID) < 0) {
		bad("unshare(CLONE_NEWPID): %s", strerror(errno));
		cgroups_remove(&o);
		return 1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		bad("fork: %s", strerror(errno));
		cgroups_remove(&o);
		return 1;
	}
	if (pid == 0)
		child(&o);
	child_pid = pid;
	/* As Firecracker's jailer with --new-pid-ns: vigil's host PID in the
	 * jail's root, <root>/vigil.pid (not writable by the uid). */
	char pidf[PATH_MAX + 16], num[24];
	snprintf(pidf, sizeof(pidf), "%s/%s.pid", o.root, JAIL_EXEC_NAME);
	snprintf(num, sizeof(num), "%d\n", (int)pid);
	int pfd = open(pidf, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (pfd < 0 || write(pfd, num, strlen(num)) != (ssize_t)strlen(num))
		bad("%s: %s", pidf, strerror(errno)); /* said, not fatal: vigil runs */
	if (pfd >= 0)
		close(pfd);
	struct sigaction sa = { .sa_handler = forward };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			bad("waitpid: %s", strerror(errno));
			return 1;
		}
	cgroups_remove(&o);
	/* The nodes would let the uid open /dev/kvm through the jail dir once
	 * the VM is gone; the rest of the jail stays (README). */
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/dev/kvm", o.root);
	unlink(p);
	snprintf(p, sizeof(p), "%s/dev/net/tun", o.root);
	unlink(p);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}
