/* The exit rule every CUnit program of tessera shares (tests/cunit_run.c):
 * exit 0 only when a test ran and nothing failed. Checked by running it on
 * three registries: none registered, one failing test, one passing test.
 * This program's own verdict does not use the rule under test. */
#include <CUnit/Basic.h>
#include <stdio.h>

#include "tests/cunit_run.h"

static void passes(void) { CU_ASSERT_EQUAL(1 + 1, 2); }
static void fails(void) { CU_ASSERT_EQUAL(1 + 1, 3); }
static int init_fails(void) { return 1; }

/* The rule's exit status on a registry of one suite (init may fail) with
 * test fn, or of no suite when fn is NULL; -1 when CUnit cannot start. */
static int rule_on(CU_TestFunc fn, CU_InitializeFunc init) {
    if (CU_initialize_registry() != CUE_SUCCESS) return -1;
    if (fn) {
        CU_pSuite s = CU_add_suite("case", init, NULL);
        if (!s || !CU_add_test(s, "test", fn)) return -1;
    }
    return ts_cunit_run();
}

int main(void) {
    struct {
        const char *what;
        CU_TestFunc fn;
        CU_InitializeFunc init;
        int want;
    } cases[] = {{"nothing registered", NULL, NULL, 1},
                 {"a failing assertion", fails, NULL, 1},
                 {"a suite whose set-up fails", passes, init_fails, 1},
                 {"a passing test", passes, NULL, 0}};
    int bad = 0, n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; i++) {
        int got = rule_on(cases[i].fn, cases[i].init);
        printf("%s: exit %d (want %d)\n", cases[i].what, got, cases[i].want);
        bad += got != cases[i].want;
    }
    printf("%d of %d cases as the rule says\n", n - bad, n);
    return bad ? 1 : 0;
}
