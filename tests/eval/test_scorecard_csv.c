/* The scorecard CSV reader of tessera plot (eval/scorecard_csv.h): columns
 * in any order, quotes, levels merged into names, empty cells as NaN, the
 * chart order; and every refusal as one line naming the file and line. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#endif
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/scorecard_csv.h"
#include "tests/cunit_run.h"

static char g_dir[64];
static char g_path[128];
static char err[1024];

static const char *write_csv(const char *text) {
    snprintf(g_path, sizeof g_path, "%s/card.csv", g_dir);
    FILE *f = fopen(g_path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
    return g_path;
}

static void test_reads_and_orders(void) {
    const char *p = write_csv("system,metric,lead_hours,variable,level,value,ci_low,ci_high\n"
                              "persistence,rmse,48,z,500,700,650,750\n"
                              "tessera,rmse,48,z,500,400,,\n"
                              "tessera,acc,24,z,500,0.9,0.8,0.95\n"
                              "tessera,rmse,24,z,500,300,nan,310\n"
                              "\n"
                              "\"my model, v2\",rmse,24,z,500,350,340,360\n"
                              "tessera,rmse,24,t2m,0,1.5,1.4,1.6\n"
                              "tessera,rmse,24,z500,500,300,290,310\n");
    ts_scorecard_csv sc;
    CU_ASSERT_FATAL(ts_scorecard_csv_read(p, &sc, err, sizeof err) == -1); /* z500 at 24 h twice */
    CU_ASSERT(strstr(err, "card.csv:") && strstr(err, "a second row for z500 rmse tessera at lead 24 h") &&
              strstr(err, "first is line 5") && !strchr(err, '\n'));
    p = write_csv("system,metric,lead_hours,variable,level,value,ci_low,ci_high\n"
                  "persistence,rmse,48,z,500,700,650,750\n"
                  "tessera,rmse,48,z,500,400,,\n"
                  "tessera,acc,24,z,500,0.9,0.8,0.95\n"
                  "tessera,rmse,24,z,500,300,nan,310\n"
                  "\n"
                  "\"my model, v2\",rmse,24,z,500,350,340,360\n"
                  "tessera,rmse,24,t2m,0,1.5,1.4,1.6\n");
    CU_ASSERT_FATAL(ts_scorecard_csv_read(p, &sc, err, sizeof err) == 0);
    CU_ASSERT_FATAL(sc.n == 6);
    /* t2m first; then z500: rmse (tessera 24, 48; persistence 48; then the unknown system), then acc */
    const char *want[6][3] = {{"t2m", "rmse", "tessera"},       {"z500", "rmse", "tessera"},
                              {"z500", "rmse", "tessera"},      {"z500", "rmse", "persistence"},
                              {"z500", "rmse", "my model, v2"}, {"z500", "acc", "tessera"}};
    for (size_t i = 0; i < 6; i++)
        CU_ASSERT(strcmp(sc.rows[i].var, want[i][0]) == 0 && strcmp(sc.rows[i].metric, want[i][1]) == 0 &&
                  strcmp(sc.rows[i].system, want[i][2]) == 0);
    CU_ASSERT(sc.rows[1].lead == 24 && sc.rows[2].lead == 48 && sc.rows[1].value == 300);
    CU_ASSERT(isnan(sc.rows[1].lo) && sc.rows[1].hi == 310 && isnan(sc.rows[2].lo) && isnan(sc.rows[2].hi));
    CU_ASSERT(sc.rows[1].line == 5 && sc.rows[0].line == 8);
    CU_ASSERT(ts_score_system_rank("climatology") == 2 && ts_score_system_rank("other") == TS_SCORE_SYSTEMS);
    CU_ASSERT(ts_score_metric_rank("spread_skill") == 3 && ts_score_metric_rank("mae") == TS_SCORE_METRICS);
    ts_scorecard_csv_free(&sc);
    CU_ASSERT(sc.rows == NULL && sc.n == 0);
}

/* text must be refused with one line holding every fragment. */
static void refused(const char *text, const char *a, const char *b) {
    ts_scorecard_csv sc;
    const char *p = text ? write_csv(text) : "/nonexistent/card.csv";
    int rc = ts_scorecard_csv_read(p, &sc, err, sizeof err);
    int ok = rc == -1 && strstr(err, "card.csv") && strstr(err, a) && (!b || strstr(err, b)) && !strchr(err, '\n') &&
             sc.rows == NULL;
    if (!ok) fprintf(stderr, "\n  %s: rc %d, message: %s\n", a, rc, err);
    CU_ASSERT(ok);
}

static void test_refusals(void) {
    const char *head = "variable,level,lead_hours,metric,system,value,ci_low,ci_high\n";
    char text[512];
    refused(NULL, "cannot open the scorecard", NULL);
    refused("", "empty file", NULL);
    refused("variable,level,lead_hours,metric,system,value,ci_low\n", "no column 'ci_high'", NULL);
    refused(head, "no rows under the header", NULL);
    snprintf(text, sizeof text, "%sz,500,24,rmse,tessera,300\n", head);
    refused(text, "card.csv:2: 6 fields", NULL);
    snprintf(text, sizeof text, "%sz,500,a day,rmse,tessera,300,1,2\n", head);
    refused(text, "card.csv:2: lead_hours 'a day' is not a number", NULL);
    snprintf(text, sizeof text, "%sz,500,24,rmse,tessera,3OO,1,2\n", head);
    refused(text, "card.csv:2: value '3OO' is not a number", NULL);
    snprintf(text, sizeof text, "%sz,500,24,rmse,,300,1,2\n", head);
    refused(text, "card.csv:2: variable, metric and system must not be empty", NULL);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/tessera_card_XXXXXX");
    if (!mkdtemp(g_dir)) return perror("mkdtemp"), 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("scorecard csv", NULL, NULL);
    if (!s || !CU_add_test(s, "reads, merges levels, orders", test_reads_and_orders) ||
        !CU_add_test(s, "refusals", test_refusals)) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    int rc = ts_cunit_run();
    unlink(g_path);
    rmdir(g_dir);
    return rc;
}
