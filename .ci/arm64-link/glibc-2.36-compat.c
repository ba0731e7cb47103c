// Definitions of the C library functions that Debian sid's static Swift runtime calls but Debian 12's
// glibc 2.36 lacks, linked into the arm64 release binary by .ci/arm64-cross when it links against an
// older Debian's C library (MTLSEG_CROSS_LIBC, default bookworm) so that the package installs on
// Debian 12 and 13 and Raspberry Pi OS, not only on sid.
//
// The Swift runtime, Foundation and libdispatch in swiftlang's swift_static were compiled against
// glibc 2.38+ headers, which turn strtol, strtoll, strtoul and sscanf into their C23 variants
// (__isoc23_*) and declare strlcpy and strlcat (new in 2.38). Symbols that an old glibc has under an
// older version (sqrtf, fmod and the other libm functions glibc re-versioned) need nothing here: the
// linker binds them to the version in the library it links against.
//
// Every definition is hidden: it serves the objects linked into the binary and is not exported, so it
// never stands in for the C library's own functions for other libraries (the binary is linked with
// -export-dynamic). No C library header is included: glibc 2.38+ headers would redirect strtol and
// sscanf to the very functions defined here.
//
// Semantics that differ from glibc 2.38+: the C23 functions also read binary numbers, "0b101" or
// "0B101", when the base is 0 or 2 (strtol family) and for %i (sscanf family), and C23 sscanf has a
// %b conversion; these read such input as C17 does ("0b101" is 0, then the text "b101"; %b fails).
// strlcpy and strlcat behave as glibc's.
#include <stdarg.h>
#include <stddef.h>

#define HIDDEN __attribute__((visibility("hidden")))

long strtol(const char *, char **, int);
long long strtoll(const char *, char **, int);
unsigned long strtoul(const char *, char **, int);
unsigned long long strtoull(const char *, char **, int);
int __isoc99_vsscanf(const char *, const char *, va_list); // C99 sscanf: %a is a float, as in C23
size_t strlen(const char *);
size_t strnlen(const char *, size_t);
void *memcpy(void *, const void *, size_t);

HIDDEN long __isoc23_strtol(const char *text, char **end, int base) { return strtol(text, end, base); }
HIDDEN long long __isoc23_strtoll(const char *text, char **end, int base) { return strtoll(text, end, base); }
HIDDEN unsigned long __isoc23_strtoul(const char *text, char **end, int base) { return strtoul(text, end, base); }
HIDDEN unsigned long long __isoc23_strtoull(const char *text, char **end, int base) {
  return strtoull(text, end, base);
}

HIDDEN int __isoc23_sscanf(const char *text, const char *format, ...) {
  va_list arguments;
  va_start(arguments, format);
  int assigned = __isoc99_vsscanf(text, format, arguments);
  va_end(arguments);
  return assigned;
}

HIDDEN int __isoc23_vsscanf(const char *text, const char *format, va_list arguments) {
  return __isoc99_vsscanf(text, format, arguments);
}

// Copies at most size - 1 bytes and terminates the copy when size > 0; returns strlen(source), so a
// result >= size means the copy was truncated.
HIDDEN size_t strlcpy(char *destination, const char *source, size_t size) {
  size_t length = strlen(source);
  if (size > 0) {
    size_t copied = length < size - 1 ? length : size - 1;
    memcpy(destination, source, copied);
    destination[copied] = '\0';
  }
  return length;
}

// Appends to a string terminated within size bytes; returns the length it tried to make.
HIDDEN size_t strlcat(char *destination, const char *source, size_t size) {
  size_t existing = strnlen(destination, size);
  if (existing == size) return size + strlen(source);
  return existing + strlcpy(destination + existing, source, size - existing);
}
