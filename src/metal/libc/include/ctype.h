/* vigil-metal's libc shim: <ctype.h>, the "C" locale (ASCII). */
#ifndef VIGIL_METAL_CTYPE_H
#define VIGIL_METAL_CTYPE_H
int isspace(int c);
int isdigit(int c);
int isxdigit(int c);
int isalpha(int c);
int isalnum(int c);
int isupper(int c);
int islower(int c);
int isprint(int c);
int iscntrl(int c);
int ispunct(int c);
int isgraph(int c);
int tolower(int c);
int toupper(int c);
#endif
