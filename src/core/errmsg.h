/* errmsg — the one-line error reasons functions hand back to their caller
 * (`char *err, size_t errlen`), which the CLI prints as "vigil: <reason>". */
#ifndef VIGIL_CORE_ERRMSG_H
#define VIGIL_CORE_ERRMSG_H

#include <stdarg.h>
#include <stddef.h>

/* Formats the reason into err (if any); returns -1 so callers can write
 * `return errmsg(err, errlen, "...")`. */
__attribute__((format(printf, 3, 4))) int errmsg(char *err, size_t errlen, const char *fmt, ...);
__attribute__((format(printf, 3, 0))) int verrmsg(char *err, size_t errlen, const char *fmt, va_list ap);

#endif
