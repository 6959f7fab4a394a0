/* vigil-metal's libc shim: <locale.h> — the "C" locale only. */
#ifndef VIGIL_METAL_LOCALE_H
#define VIGIL_METAL_LOCALE_H
struct lconv {
	char *decimal_point;
	char *thousands_sep;
	char *grouping;
};
struct lconv *localeconv(void);
#endif
