#include "tests/cunit_run.h"

#include <CUnit/Basic.h>
#include <stdio.h>

int ts_cunit_run(void) {
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_ErrorCode rc = CU_basic_run_tests();
    unsigned ran = CU_get_number_of_tests_run();
    unsigned failed = CU_get_number_of_suites_failed() + CU_get_number_of_tests_failed() + CU_get_number_of_failures();
    if (rc != CUE_SUCCESS) fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
    if (ran == 0) fprintf(stderr, "no test ran: a test program that checks nothing fails\n");
    CU_cleanup_registry();
    return rc == CUE_SUCCESS && ran > 0 && failed == 0 ? 0 : 1;
}
