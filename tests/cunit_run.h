/* The one exit rule of tessera's CUnit programs. */
#ifndef TESSERA_TESTS_CUNIT_RUN_H
#define TESSERA_TESTS_CUNIT_RUN_H

/* Run every registered suite with CUnit's basic interface (verbose), then
 * clean the registry. Returns the program's exit status: 0 only when at
 * least one test ran and no suite set-up, test or assertion failed; 1
 * otherwise (a program that registered nothing, or whose suites could not
 * start, fails). */
int ts_cunit_run(void);

#endif
