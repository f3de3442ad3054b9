/* SPDX-License-Identifier: ISC */
/*
 * lint_cmocka.h: for make lint only (clang -include).  cmocka's _fail()
 * longjmps out of the test and never returns, but its header does not say
 * so; the analyzer then follows "if (c == NULL) fail_msg(...)" into a NULL
 * dereference that cannot happen.  Redeclared here with the attribute.
 */
void _fail(const char *const file, const int line) __attribute__((noreturn));
