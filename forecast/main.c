/* tessera: one binary, subcommands.
 *
 *   tessera <command> [config.yaml] [key.sub=value ...]
 *
 * Configuration resolves in layers: the key table's defaults, then the YAML
 * file, then command-line overrides. Every command prints the resolved
 * configuration, logs to the terminal on rank 0 and as JSON lines to
 * OUT/tessera.jsonl, and exits 2 with one line on bad usage or config.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"
#include "core/log.h"
#include "core/omp_policy.h"
#include "forecast/commands.h"
#include "forecast/mesh_run.h"
#include "io/config_yaml.h"
#include "parallel/layout.h"
#include "parallel/mpi_env.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* forecast and score serve both model families (train picks its task itself). */
static int is_mesh(const ts_command_ctx *ctx) { return strcmp(ts_config_str(ctx->cfg, "model.kind"), "mesh") == 0; }
static int forecast_any(const ts_command_ctx *ctx) { return is_mesh(ctx) ? cmd_forecast_mesh(ctx) : cmd_forecast(ctx); }
static int score_any(const ts_command_ctx *ctx) { return is_mesh(ctx) ? cmd_score_mesh(ctx) : cmd_score(ctx); }

typedef struct {
    const char *name;
    int (*run)(const ts_command_ctx *);
    const char *keys; /* key prefixes its --help lists */
    const char *summary;
    const char *details;
} command;

/* The commands of DESIGN.md. Those with no function yet say so plainly. */
static const command COMMANDS[] = {
    {"synth-era5", cmd_synth_era5, "synth.,out,seed", "run the gridded reference simulator, write CDS-format ERA5 NetCDF",
     "Runs a two-layer quasi-geostrophic model (one beta-plane channel per\n"
     "hemisphere, seasonal and diurnal forcing, a humidity tracer; docs/sim.md) for\n"
     "synth.spinup_days, then writes ERA5 NetCDF as the CDS delivers it every\n"
     "synth.step_hours from synth.start for synth.days:\n"
     "OUT/era5_pressure_levels_YYYY.nc (z t u v q) and OUT/era5_single_levels_YYYY.nc\n"
     "(u10 v10 t2m msl lsm z tisr), or the instant/accum pair with synth.split_accum;\n"
     "the model state at synth.restart_times."},
    {"synth-mesh", cmd_synth_mesh, "synth_mesh.,out,seed", "run the CFD reference simulator, write graph-physics HDF5 trajectories",
     "Simulates synth_mesh.trajectories 2-D incompressible flows past an obstacle\n"
     "(circle, ellipse or rounded rectangle; shape, position, inflow speed and\n"
     "Reynolds number in synth_mesh.re_min..re_max drawn from seed) in a 1.6 x 0.41\n"
     "channel with a lattice-Boltzmann solver of synth_mesh.lattice cells across,\n"
     "spun up for synth_mesh.spinup, then samples synth_mesh.steps steps every\n"
     "synth_mesh.dt to the nodes of a Gmsh triangle mesh refined at the obstacle.\n"
     "Writes OUT/synth_mesh.h5 (graph-physics / MeshGraphNets layout) and\n"
     "OUT/synth_mesh.json (its meta); docs/mesh-data.md."},
    {"stats", cmd_stats, "out,data.,stats.", "normalization statistics (means, stds, residual stds, climatology)",
     "Reads the ERA5-format files of data.files (the channels of data.variables and\n"
     "data.forcings) and writes per-channel area-weighted means and standard\n"
     "deviations, the standard deviations of the residuals x(t + step) - x(t) for\n"
     "each step of stats.residual_hours, and a day-of-year x hour climatology\n"
     "smoothed over stats.smooth_days days, to data.stats (default OUT/stats.nc;\n"
     "layout in docs/formats.md). Runs in parallel over time under MPI."},
    {"train", cmd_train, "out,seed,device,threads,model.,train.,data.,mesh.,parallel.",
     "train the Swin diffusion model or the mesh transformer",
     "Trains the Swin diffusion model (model.kind=swin) with TrigFlow on pairs of\n"
     "ERA5-format times train.step_hours apart, normalised with the statistics of\n"
     "tessera stats (data.stats). Logs step, loss, learning rate, gradient norm,\n"
     "samples/s, GFLOP/s and ETA; validation loss on train.val_start..val_end;\n"
     "checkpoints to train.checkpoint (default OUT/checkpoint.h5) every\n"
     "train.checkpoint_every steps, at the end, and on SIGUSR1/SIGTERM. Rerunning\n"
     "the same command resumes from the checkpoint. Under MPI, parallel.dp replicas\n"
     "share train.batch and parallel.wp_y x wp_x ranks share each field's windows.\n"
     "With model.kind=mesh it trains the mesh graph transformer on the trajectories\n"
     "of mesh.file (the first mesh.train_trajectories; the rest validate, or all of\n"
     "mesh.valid_file when it is set) to predict the normalized one-step velocity\n"
     "change (docs/mesh-model.md). The files share one meta JSON: mesh.meta, else\n"
     "<stem of mesh.file>.json, else meta.json in its folder (docs/mesh-data.md)."},
    {"forecast", forecast_any, "out,seed,device,threads,forecast.,data.,mesh.,parallel.",
     "autoregressive ensemble rollout from a checkpoint to NetCDF",
     "Rolls the Swin diffusion model of a checkpoint (forecast.checkpoint, default\n"
     "OUT/checkpoint.h5; its model.* and data channels are taken from it) forward\n"
     "from the initial times forecast.inits of data.files: forecast.members members,\n"
     "forecast.leads steps of train.step_hours, each step sampled with the TrigFlow\n"
     "sampler (forecast.levels, rho, sigma range, churn). Writes CF NetCDF\n"
     "(forecast.output, default OUT/forecast.nc; docs/forecast-format.md) lead by\n"
     "lead; rerunning the same command resumes a killed rollout. Under MPI,\n"
     "members are spread over parallel.dp replicas and each field's windows over\n"
     "parallel.wp_y x wp_x ranks. With model.kind=mesh it rolls trajectory\n"
     "mesh.trajectory of mesh.test_file (default its first) out for\n"
     "mesh.rollout_steps steps, or with no test file the one of mesh.file (default\n"
     "the first that training held out), and writes UGRID-1.0 NetCDF\n"
     "(forecast.output, default OUT/rollout.nc; docs/ugrid-format.md)."},
    {"score", score_any, "out,seed,data.,score.,mesh.", "WeatherBench-2 metrics against truth, with baselines",
     "Scores a forecast (score.forecast, default OUT/forecast.nc) against the truth of\n"
     "data.files: latitude-weighted ensemble-mean RMSE, ACC against the climatology of\n"
     "data.stats, fair CRPS and spread-skill for every variable, level and lead,\n"
     "plus WS10 and WV850, with bootstrap intervals over initial times\n"
     "(score.bootstrap). Baselines on the same cases: persistence, climatology, and\n"
     "any ensemble file of score.baselines (e.g. perfect_model=PATH). Writes\n"
     "OUT/scorecard.csv and OUT/scorecard.jsonl and prints the relative skill\n"
     "(docs/score.md). With model.kind=mesh it scores a rollout (default\n"
     "OUT/rollout.nc) against the trajectory forecast rolled out (mesh.test_file or\n"
     "mesh.file, mesh.trajectory): 1-step, 50-step and all-rollout velocity RMSE\n"
     "against persistence, to OUT/mesh_scorecard.csv."},
    {"plot", cmd_plot, "out,data.files,data.grid,data.fill,data.row_rule,plot.", "PNG maps and score-vs-lead charts",
     "Maps a forecast (plot.forecast, default OUT/forecast.nc) against its truth\n"
     "(data.files, on data.grid): truth, ensemble mean, member plot.member, error\n"
     "(mean - truth) and spread, for each variable of plot.variables and lead of\n"
     "plot.leads at initial time plot.init. Charts each metric and variable of a\n"
     "scorecard (plot.scorecard, default OUT/scorecard.csv) against lead time, one\n"
     "line per system with its interval. PNGs go to OUT/plots (docs/plot.md)."},
    {"bench", cmd_bench, "bench.,device,threads,out,parallel.,model.kind,mesh.globals",
     "throughput of the ops of a Swin block beside the machine's GEMM ceiling",
     "Times each op of one Swin block (GEMMs, window attention, norms, activations,\n"
     "the shift permutation, AdamW) on the bench.* shape, the median of bench.reps\n"
     "runs, beside the SGEMM ceiling of the same device measured in the same run\n"
     "(OpenBLAS on the CPU, cuBLAS on a GPU). Prints a table and appends one JSON\n"
     "line per row to OUT/bench.jsonl. With model.kind=mesh it times the sparse\n"
     "attention, one layer of the mesh transformer and a bench.depth-layer training\n"
     "step (recomputed) on a lattice of bench.mesh_nodes nodes and about\n"
     "bench.mesh_edges mask entries, with memory (docs/bench.md)."},
    {"demo", cmd_demo, "out,seed,threads,demo.",
     "the whole chain: self-check, synth-era5, stats, train, forecast, score, plot",
     "Checks that this build computes correctly (RNG known answers, GEMM against a\n"
     "double loop, op invariants, and the GPU against the CPU when there is one),\n"
     "then runs every gridded command on an embedded configuration: 3 simulated\n"
     "years at 5.625 deg, statistics, a small model trained for about 5 minutes,\n"
     "an 8-member 5-day ensemble from 4 dates of the held-out year, its scores\n"
     "against persistence and climatology, and plots. Each stage prints its\n"
     "command line. demo.size=quick runs it all in seconds."},
    {"config", cmd_config, "", "print the resolved configuration; --markdown prints docs/config.md",
     "Resolves defaults, an optional YAML file and overrides, and prints every key\n"
     "with where its value came from. `tessera config --markdown` writes the\n"
     "reference of all keys (docs/config.md is generated this way)."},
};
enum { NCOMMANDS = sizeof COMMANDS / sizeof COMMANDS[0] };

static void print_usage(FILE *f) {
    fprintf(f,
            "tessera %s: window-based transformer forecasters for gridded and mesh data\n\n"
            "usage: tessera <command> [config.yaml] [key.sub=value ...]\n"
            "       tessera <command> --help\n"
            "       tessera --version\n\ncommands:\n",
            TESSERA_VERSION);
    for (int i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-11s %s%s\n", COMMANDS[i].name, COMMANDS[i].summary,
                COMMANDS[i].run ? "" : " (not yet available)");
    fprintf(f,
            "\nConfiguration: a YAML file and/or key.sub=value overrides (overrides win).\n"
            "Every key: tessera config --markdown, or docs/config.md.\n"
            "Run with MPI: mpiexec -n N tessera <command> parallel.dp=N ...\n");
}

static void print_command_help(const command *c) {
    printf("usage: tessera %s [config.yaml] [key.sub=value ...]\n\n%s\n", c->name, c->summary);
    if (c->details) printf("\n%s\n", c->details);
    if (!c->run) printf("\nThis command is not yet available in tessera %s.\n", TESSERA_VERSION);
    if (c->keys && *c->keys) {
        printf("\nkeys:\n");
        ts_config_help(stdout, c->keys);
    }
}

static const command *find_command(const char *name) {
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(COMMANDS[i].name, name) == 0) return &COMMANDS[i];
    const char *names[NCOMMANDS];
    for (int i = 0; i < NCOMMANDS; i++) names[i] = COMMANDS[i].name;
    const char *near = ts_closest_match(name, names, NCOMMANDS);
    if (near) ts_usage_error("unknown command '%s' (did you mean '%s'?); see tessera --help", name, near);
    ts_usage_error("unknown command '%s'; see tessera --help", name);
}

/* mkdir -p */
static void make_dirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        char saved = *p;
        if (saved == '/' || saved == '\0') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                ts_usage_error("cannot create output folder '%s': %s", buf, strerror(errno));
            *p = saved;
        }
        if (saved == '\0') break;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) ts_usage_error("out=%s is not a folder", path);
}

static int is_yaml_path(const char *arg) {
    size_t n = strlen(arg);
    return !strchr(arg, '=') && ((n > 5 && strcmp(arg + n - 5, ".yaml") == 0) ||
                                 (n > 4 && strcmp(arg + n - 4, ".yml") == 0));
}

int cmd_config(const ts_command_ctx *ctx) {
    if (ctx->layout->rank == 0) ts_config_print(ctx->cfg, stdout);
    return 0;
}

int main(int argc, char **argv) {
    ts_omp_prefer_passive(argv);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? TS_EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("tessera %s\n", TESSERA_VERSION);
#ifdef TESSERA_HAVE_PARALLEL_NETCDF
        printf("forecast files: written collectively by every rank (parallel NetCDF-4)\n");
#else
        printf("forecast files: gathered and written by rank 0 (serial NetCDF-4)\n");
#endif
        return 0;
    }
    const command *cmd = find_command(argv[1]);
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_command_help(cmd);
            return 0;
        }
    if (cmd->run == cmd_config && argc == 3 && strcmp(argv[2], "--markdown") == 0) {
        ts_config_markdown(stdout);
        return 0;
    }
    if (!cmd->run)
        ts_usage_error("'%s' is not yet available in tessera %s; see tessera --help", cmd->name, TESSERA_VERSION);

    ts_mpi_init(&argc, &argv);
    ts_config *cfg = ts_config_new();
    char err[1024];
    for (int i = 2; i < argc; i++) {
        if (is_yaml_path(argv[i])) {
            if (i != 2) ts_usage_error("the config file '%s' must come right after the command", argv[i]);
            if (ts_config_load_yaml(cfg, argv[i], err, sizeof err)) ts_usage_error("%s", err);
        } else if (ts_config_apply_override(cfg, argv[i], err, sizeof err)) {
            ts_usage_error("%s", err);
        }
    }

    static const char *LEVELS[] = {"debug", "info", "warn", "error"};
    for (int l = 0; l < 4; l++)
        if (strcmp(ts_config_str(cfg, "log.level"), LEVELS[l]) == 0) ts_log_set_level((ts_log_level)l);
#ifdef _OPENMP
    if (ts_config_int(cfg, "threads") > 0) omp_set_num_threads((int)ts_config_int(cfg, "threads"));
#endif

    int sizes[TS_AXIS_COUNT];
    for (int a = 0; a < TS_AXIS_COUNT; a++) sizes[a] = (int)ts_config_int(cfg, TS_AXIS_NAMES[a]);
    ts_layout layout;
    if (ts_layout_create(&layout, MPI_COMM_WORLD, sizes, err, sizeof err)) ts_usage_error("%s", err);

    const char *out = ts_config_str(cfg, "out");
    if (layout.rank == 0 && cmd->run != cmd_config) make_dirs(out);
    MPI_Barrier(MPI_COMM_WORLD);
    char logpath[4096];
    snprintf(logpath, sizeof logpath, "%s/tessera.jsonl", out);
    /* `config` only prints: it leaves no log behind in the folder it runs in */
    if (cmd->run != cmd_config && ts_log_open_json(logpath))
        ts_fatal("cannot open the log '%s' for writing", logpath);

    /* The resolved configuration: on the terminal (unless the command is
     * `config`, which prints nothing else) and in the JSON log. */
    int need = ts_config_to_json(cfg, NULL, 0);
    char *json = malloc((size_t)need + 1);
    ts_config_to_json(cfg, json, (size_t)need + 1);
    char *fields = malloc((size_t)need + 64);
    snprintf(fields, (size_t)need + 64, "\"command\":\"%s\",\"config\":%s", cmd->name, json);
    ts_log_event("start", fields);
    free(fields), free(json);
    if (layout.rank == 0 && cmd->run != cmd_config) {
        ts_info("tessera %s %s on %d rank%s; resolved configuration:", TESSERA_VERSION, cmd->name, layout.world,
                layout.world > 1 ? "s" : "");
        ts_config_print(cfg, stdout);
        fflush(stdout);
    }

    ts_command_ctx ctx = {cfg, &layout, out};
    double t0 = ts_now();
    int rc = cmd->run(&ctx);
    char done[128];
    snprintf(done, sizeof done, "\"command\":\"%s\",\"exit\":%d,\"seconds\":%.3f", cmd->name, rc, ts_now() - t0);
    ts_log_event("end", done);
    ts_log_close_json();
    ts_layout_free(&layout);
    ts_config_free(cfg);
    ts_mpi_finalize();
    return rc;
}
