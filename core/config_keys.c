/* The configuration keys tessera declares: name, type, default, range and
 * help of each, grouped by section (docs/config.md is generated from this
 * table by `tessera config --markdown`). */
#include <stddef.h>
#include <string.h>

#include "core/config.h"

#define NO_LIMIT TS_CFG_UNBOUNDED
#define INT_KEY(name, def, lo, hi, help) {name, TS_CFG_INT, def, lo, hi, NULL, help}
#define FLOAT_KEY(name, def, lo, hi, help) {name, TS_CFG_FLOAT, def, lo, hi, NULL, help}
#define BOOL_KEY(name, def, help) {name, TS_CFG_BOOL, def, 0, 0, NULL, help}
#define STRING_KEY(name, def, help) {name, TS_CFG_STRING, def, 0, 0, NULL, help}
#define ENUM_KEY(name, def, choices, help) {name, TS_CFG_ENUM, def, 0, 0, choices, help}

/* Largest rank count along one layout axis: far beyond any machine, small
 * enough that products of axes stay well inside 64 bits. */
#define MAX_RANKS 1048576

/* Keys grouped by section (the text before the first dot); docs/config.md
 * and --help list them in this order. */
static const ts_config_key TS_CONFIG_KEYS[] = {
    /* general */
    STRING_KEY("out", ".", "folder the command writes into (outputs and tessera.jsonl)"),
    INT_KEY("seed", "1234", 0, NO_LIMIT,
            "seed of the counter-based RNG (initialization, noise, data order)"),
    ENUM_KEY("device", "cpu", "cpu|cuda", "backend that runs the ops"),
    INT_KEY("threads", "0", 0, 1024, "OpenMP threads per rank; 0 = OpenMP default"),

    /* model */
    ENUM_KEY("model.kind", "swin", "swin|mesh",
             "model family: gridded Swin diffusion transformer or mesh graph transformer"),
    INT_KEY("model.dim", "256", 8, 65536, "channels of the residual stream"),
    INT_KEY("model.heads", "8", 1, 4096, "attention heads; model.dim must divide by it"),
    INT_KEY("model.hidden", "1024", 1, 1048576, "SwiGLU hidden width (swin); gated-MLP hidden width (mesh)"),
    INT_KEY("model.depth", "4", 1, 4096, "transformer blocks (see model.shift for which use shifted windows)"),
    ENUM_KEY("model.shift", "block", "block|stage",
             "swin: which blocks use shifted windows: block = every odd block; stage = every other group of "
             "model.shift_every blocks (AERIS: one shift per pipeline stage)"),
    INT_KEY("model.shift_every", "2", 1, 4096, "swin, model.shift=stage: blocks a group (a stage) holds"),
    INT_KEY("model.window", "8", 1, 4096, "window side in grid points; must divide the grid rows and columns"),
    ENUM_KEY("model.objective", "diffusion", "diffusion|regress",
             "swin: diffusion = TrigFlow ensemble model; regress = deterministic one-step regressor (MSE on the normalised residual), the control"),
    INT_KEY("model.t_freq", "256", 2, 65536, "size of the sinusoidal diffusion-time embedding (even)"),

    /* train: the diffusion model's training run (tessera train) */
    INT_KEY("train.steps", "1000", 1, NO_LIMIT, "optimizer steps of the whole run"),
    INT_KEY("train.batch", "4", 1, 1048576, "global batch: samples per step over all ranks; parallel.dp must divide it"),
    INT_KEY("train.micro_batches", "1", 1, 1048576,
            "micro-batches a replica's share of a step runs in, one after another, adding their gradients (swin; "
            "it must divide train.batch / parallel.dp): the same step in less activation memory; with parallel.pp "
            "the micro-batches the pipeline overlaps (at least pp)"),
    INT_KEY("train.step_hours", "24", 1, 8784, "forecast step: the model learns x(t + step) - x(t)"),
    STRING_KEY("train.start", "", "first initial time used for training, YYYY-MM-DD[THH] (empty: the data's first)"),
    STRING_KEY("train.end", "", "training initial times are before this (empty: the validation start, or the data's end)"),
    STRING_KEY("train.val_start", "", "first validation initial time (empty: no validation)"),
    STRING_KEY("train.val_end", "", "validation initial times are before this (empty: the data's end)"),
    INT_KEY("train.val_every", "100", 1, NO_LIMIT, "steps between validation losses"),
    INT_KEY("train.val_levels", "0", 0, 1000,
            "swin: also forecast the validation samples one step with this many sampler levels and log the ensemble mean's RMSE / persistence RMSE (0 = off)"),
    INT_KEY("train.val_members", "4", 1, 1000, "swin: members whose mean is the validation forecast (train.val_levels > 0)"),
    INT_KEY("train.val_samples", "8", 1, 1048576, "validation samples (fixed samples and noise) per validation"),
    FLOAT_KEY("train.lr", "2e-4", 0, 1, "peak learning rate (AdamW)"),
    FLOAT_KEY("train.lr_min", "2e-6", 0, 1, "learning rate at the end of the cosine decay"),
    INT_KEY("train.warmup", "100", 0, NO_LIMIT, "steps of linear learning-rate warm-up"),
    FLOAT_KEY("train.beta1", "0.85", 0, 0.999999, "AdamW beta1"),
    FLOAT_KEY("train.beta2", "0.9", 0, 0.999999, "AdamW beta2"),
    FLOAT_KEY("train.weight_decay", "0.2", 0, 10, "AdamW decoupled weight decay"),
    FLOAT_KEY("train.clip", "1.0", 0, NO_LIMIT, "gradient clipping by global norm; 0 = off"),
    FLOAT_KEY("train.ema", "0.999", 0, 0.999999999, "EMA decay of the weights used for sampling; 0 = off"),
    FLOAT_KEY("train.sigma_min", "0.02", 1e-6, 1e6, "smallest TrigFlow noise level tau"),
    FLOAT_KEY("train.sigma_max", "200", 1e-6, 1e6, "largest TrigFlow noise level tau"),
    STRING_KEY("train.var_weights", "", "loss weights per channel, e.g. t2m=0.156,msl=0.0156 (others 1)"),
    INT_KEY("train.log_every", "10", 1, NO_LIMIT, "steps between progress lines"),
    INT_KEY("train.checkpoint_every", "500", 1, NO_LIMIT, "steps between checkpoints (and one at the end)"),
    STRING_KEY("train.checkpoint", "", "checkpoint path (default OUT/checkpoint.h5); resumed from when it exists"),

    /* demo */
    ENUM_KEY("demo.size", "full", "full|quick",
             "full: 3 simulated years and about 10 minutes on 2 cores; quick: seconds, for tests"),

    /* log */
    ENUM_KEY("log.level", "info", "debug|info|warn|error",
             "lowest level printed on rank 0 and written to the JSON log"),

    /* parallel: the rank grid DP x WP_y x WP_x x SP x PP */
    INT_KEY("parallel.dp", "1", 1, MAX_RANKS, "data-parallel replicas (ensemble groups in forecast)"),
    INT_KEY("parallel.wp_y", "1", 1, MAX_RANKS, "window-parallel ranks along latitude (window rows)"),
    INT_KEY("parallel.wp_x", "1", 1, MAX_RANKS, "window-parallel ranks along longitude (window columns)"),
    INT_KEY("parallel.sp", "1", 1, MAX_RANKS,
            "sequence-parallel ranks: swin, bands of grid rows with Ulysses attention (model.heads and the rows "
            "must divide by it); mesh, chunks of a graph's nodes"),
    INT_KEY("parallel.pp", "1", 1, MAX_RANKS,
            "pipeline stages (swin): consecutive groups of model.depth / pp blocks, the embedding with the first and "
            "the head with the last; training runs 1F1B over train.micro_batches (at least pp)"),

    /* forecast: ensemble rollouts (tessera forecast) */
    STRING_KEY("forecast.checkpoint", "", "checkpoint to forecast with (default OUT/checkpoint.h5)"),
    ENUM_KEY("forecast.weights", "ema", "ema|params", "weights of the checkpoint: the EMA (sampling) or the raw ones"),
    STRING_KEY("forecast.inits", "", "initial times, YYYY-MM-DD[THH] comma-separated; each must be in data.files"),
    INT_KEY("forecast.members", "8", 1, 65535, "ensemble members per initial time"),
    INT_KEY("forecast.leads", "5", 1, 4095, "lead steps of train.step_hours each"),
    INT_KEY("forecast.micro_batches", "1", 1, 65535,
            "swin: a DP replica's members in this many micro-batches; with parallel.pp > 1 they flow through the "
            "stages one after another (a forward pipeline), and a stage holds one micro-batch's activations"),
    INT_KEY("forecast.levels", "20", 1, 4095, "sampler noise levels N (2N - 1 network calls per lead)"),
    FLOAT_KEY("forecast.rho", "7", 1, 100, "Karras schedule exponent"),
    FLOAT_KEY("forecast.sigma_min", "0.02", 1e-6, 1e6, "smallest noise level of the sampler"),
    FLOAT_KEY("forecast.sigma_max", "80", 1e-6, 1e6, "largest noise level of the sampler"),
    FLOAT_KEY("forecast.churn", "0", 0, 1000, "EDM S_churn; 0 = deterministic ODE sampling"),
    FLOAT_KEY("forecast.s_noise", "1", 0, 10, "EDM S_noise of the churn"),
    STRING_KEY("forecast.output", "", "forecast file (default OUT/forecast.nc)"),
    ENUM_KEY("forecast.files", "ensemble", "ensemble|per_member",
             "swin: one ensemble file (forecast.output), or one CF file per initial time and member, "
             "<stem>-<YYYYMMDDTHH>-m<NN>.nc, split from it (cdo, ncview, Panoply)"),
    FLOAT_KEY("forecast.bounds_std", "30", 1, 1e6,
              "a member stops with an error when a value leaves mean +- this many stds of its channel"),

    /* score: WeatherBench-2 metrics (tessera score) */
    STRING_KEY("score.forecast", "", "forecast file scored as system tessera (default OUT/forecast.nc)"),
    STRING_KEY("score.baselines", "",
               "more ensemble forecasts scored as systems, name=path comma-separated (perfect_model=OUT/pm.nc)"),
    INT_KEY("score.bootstrap", "1000", 0, 100000, "bootstrap resamples of the initial times for 95% intervals; 0 = none"),
    BOOL_KEY("score.perfect_model", "false",
             "also score the reference simulator run from its restart states as system perfect_model (truth from synth-era5)"),
    STRING_KEY("score.restarts", "", "folder of the simulator's restart files (default: the folder of the first data.files match)"),

    /* mesh: graph-physics trajectories and the mesh transformer's attention mask */
    STRING_KEY("mesh.file", "", "graph-physics HDF5 trajectories (their meta JSON: see mesh.meta)"),
    STRING_KEY("mesh.meta", "",
               "meta JSON of the mesh files (default: <stem of mesh.file>.json if it exists, else meta.json in its folder)"),
    STRING_KEY("mesh.valid_file", "", "validation trajectories in their own file (replaces the split of mesh.file)"),
    STRING_KEY("mesh.test_file", "",
               "test trajectories in their own file: forecast and score roll them out (replaces the split of mesh.file)"),
    INT_KEY("mesh.train_trajectories", "0", 0, NO_LIMIT,
            "trajectories used for training, from the first; the rest are test cases (0 = all but the last)"),
    INT_KEY("mesh.trajectory", "-1", -1, NO_LIMIT, "test trajectory rolled out by forecast (-1 = the first test one)"),
    INT_KEY("mesh.khop", "1", 1, 8, "mask: neighbours up to this many mesh edges away"),
    INT_KEY("mesh.window", "8", 0, 65536, "mask: dilated sliding window half-width w over the node order (0 = none)"),
    INT_KEY("mesh.dilation", "1", 1, 65536, "mask: window dilation d; node i attends j when abs(i-j) <= w*d and d divides i-j"),
    INT_KEY("mesh.globals", "4", 0, 1024, "mask: global tokens that attend to and are attended by every node"),
    ENUM_KEY("mesh.order", "hilbert", "hilbert|morton|file",
             "node order: along a space-filling curve, or as in the file"),
    FLOAT_KEY("mesh.noise", "0.02", 0, 1e6, "training noise std added to the velocity of NORMAL nodes (physical units)"),
    FLOAT_KEY("mesh.noise_offset", "0", 0, 1e6,
              "training noise: std of one constant per sample and component added to the velocity of all its NORMAL "
              "nodes (physical units), so the model learns to undo a domain-wide drift; 0 = off"),
    FLOAT_KEY("mesh.pushforward", "0", 0, 1,
              "fraction of training samples whose input is the model's own one-step prediction (no gradient "
              "through it), the pushforward trick against rollout drift; 0 = off"),
    INT_KEY("mesh.pushforward_steps", "1", 1, 4096,
            "model steps of a pushed sample (mesh.pushforward): drawn uniformly from 1..this per sample, the target "
            "the truth that many steps plus one after its start"),
    BOOL_KEY("mesh.recompute", "false", "recompute each block's activations in backward (keeps block inputs only)"),
    INT_KEY("mesh.rollout_steps", "0", 0, NO_LIMIT, "steps forecast rolls a mesh trajectory out (0 = to its end)"),
    INT_KEY("mesh.val_rollout", "0", 0, NO_LIMIT,
            "validation: steps each validation trajectory is rolled out from its first state, logged as val_rollout "
            "(RMSE / persistence); 0 = off"),

    /* synth_mesh: the CFD reference simulator (tessera synth-mesh) */
    INT_KEY("synth_mesh.trajectories", "8", 1, 100000, "trajectories written (obstacle shape, position and inflow vary)"),
    INT_KEY("synth_mesh.steps", "600", 2, 1000000, "time steps saved per trajectory"),
    FLOAT_KEY("synth_mesh.dt", "0.01", 1e-6, 1e6, "time between saved steps, in the file's time unit"),
    FLOAT_KEY("synth_mesh.re_min", "100", 1, 1e5, "smallest Reynolds number (by obstacle size and mean inflow)"),
    FLOAT_KEY("synth_mesh.re_max", "200", 1, 1e5, "largest Reynolds number (needs synth_mesh.lattice >= 0.3 re_max)"),
    INT_KEY("synth_mesh.lattice", "64", 16, 65536, "lattice-Boltzmann cells across the channel height"),
    FLOAT_KEY("synth_mesh.mesh_size", "0.07", 1e-4, 1, "triangle size far from the obstacle, as a fraction of the channel height"),
    FLOAT_KEY("synth_mesh.refine", "3", 1, 100, "how many times finer the triangles are at the obstacle"),
    FLOAT_KEY("synth_mesh.spinup", "3", 0, 1e6, "time simulated before the first saved step (vortex shedding sets in)"),

    /* synth: the gridded reference simulator (tessera synth-era5) */
    ENUM_KEY("synth.grid", "5.625", "5.625|1.40625",
             "output grid in degrees: 5.625 (32 x 64) or 1.40625 (128 x 256)"),
    STRING_KEY("synth.start", "2020-01-01", "first valid time written, YYYY-MM-DD[THH] (UTC)"),
    INT_KEY("synth.days", "365", 1, 36600, "days of data written from synth.start"),
    INT_KEY("synth.step_hours", "6", 1, 24, "hours between written times; must divide 24"),
    INT_KEY("synth.spinup_days", "180", 0, 100000, "model days run (and discarded) before synth.start"),
    STRING_KEY("synth.levels", "500,700,850", "pressure levels written, hPa, comma-separated"),
    ENUM_KEY("synth.layout", "cds", "cds|packed",
             "file layout: cds (2024+ CDS NetCDF-4) or packed (older int16 scale_factor/add_offset)"),
    BOOL_KEY("synth.split_accum", "false",
             "write tisr to its own stepType-accum file, as a CDS mixed request arrives"),
    STRING_KEY("synth.restart_times", "",
               "valid times (YYYY-MM-DDTHH, comma-separated) whose full model state is saved"),

    /* data: reading ERA5-format NetCDF */
    STRING_KEY("data.files", "", "ERA5 NetCDF files or glob patterns, comma-separated"),
    STRING_KEY("data.variables", "z500,t850,q700,u850,v850,t2m,u10,v10,msl",
               "state channels: surface names (t2m) or name+level in hPa (z500), comma-separated"),
    STRING_KEY("data.forcings", "tisr,lsm,z_surface",
               "forcing channels at the target time: tisr, lsm, z_surface (surface geopotential)"),
    ENUM_KEY("data.fill", "error", "error|zero|mean",
             "missing values (_FillValue, NaN): stop with an error, or fill with 0 or the field mean"),
    ENUM_KEY("data.grid", "native", "native|5.625|1.40625",
             "grid the data is used on: as stored, or conservatively coarsened to a named grid"),
    ENUM_KEY("data.row_rule", "drop_south", "drop_south|pad",
             "grids whose rows a window does not divide: drop the south-pole row, or pad with a masked band"),
    STRING_KEY("data.stats", "", "statistics file from tessera stats (default OUT/stats.nc)"),

    /* stats: normalization statistics (tessera stats) */
    STRING_KEY("stats.residual_hours", "6,24", "time steps (hours) whose residual std is computed"),
    STRING_KEY("stats.start", "", "first valid time of the statistics (YYYY-MM-DD[THH]); empty = the data's first"),
    STRING_KEY("stats.end", "", "end of the statistics' period, exclusive: the training years only, so scores never see it"),
    INT_KEY("stats.smooth_days", "61", 1, 366, "window of the day-of-year climatology smoothing, days"),

    /* bench: the Swin reference shape and the measurement */
    INT_KEY("bench.dim", "256", 8, 65536, "channels (model width) of the benchmarked shape"),
    INT_KEY("bench.heads", "8", 1, 4096, "attention heads; bench.dim must divide by it"),
    INT_KEY("bench.hidden", "1024", 1, 1048576, "SwiGLU hidden width"),
    INT_KEY("bench.window", "8", 1, 4096, "window side in tokens (windows are window x window)"),
    INT_KEY("bench.grid_h", "32", 1, 65536, "grid rows (latitudes); tokens = grid_h * grid_w"),
    INT_KEY("bench.grid_w", "64", 1, 65536, "grid columns (longitudes)"),
    INT_KEY("bench.batch", "1", 1, 65536, "samples per step"),
    INT_KEY("bench.depth", "4", 0, 4096, "blocks of the whole-model rows (forward, training step); 0 skips them"),
    INT_KEY("bench.reps", "5", 1, 1000, "timed repetitions; the median is reported"),
    INT_KEY("bench.mesh_nodes", "300000", 16, 1LL << 31, "nodes of the benchmarked mesh (model.kind=mesh)"),
    INT_KEY("bench.mesh_edges", "3000000", 16, 1LL << 40, "attention edges (mask entries) of the benchmarked mesh, about"),
    INT_KEY("bench.ceiling_n", "1024", 1, 32768,
            "side of the square SGEMM timed as the machine's ceiling"),
    STRING_KEY("bench.ops", "all", "comma-separated op names to time, or all"),

    /* plot: PNG maps and score-vs-lead charts (tessera plot) */
    STRING_KEY("plot.forecast", "", "forecast NetCDF to map (default OUT/forecast.nc when it exists)"),
    STRING_KEY("plot.scorecard", "", "scorecard CSV to chart (default OUT/scorecard.csv when it exists)"),
    STRING_KEY("plot.logs", "",
               "training logs (tessera.jsonl, comma-separated) whose validation fields are drawn against wall-clock time"),
    STRING_KEY("plot.labels", "", "legend names of plot.logs, comma-separated (default: each log's folder)"),
    STRING_KEY("plot.variables", "",
               "variables mapped, named as in data.variables (z500, t2m), comma-separated; empty: all in the forecast"),
    STRING_KEY("plot.leads", "", "lead times mapped, hours, comma-separated; empty: the forecast's first lead"),
    INT_KEY("plot.init", "0", 0, NO_LIMIT, "initial time mapped: index along the forecast's time axis"),
    INT_KEY("plot.member", "0", 0, NO_LIMIT, "member drawn on its own: index along the forecast's number axis"),
};

#define N_KEYS (sizeof TS_CONFIG_KEYS / sizeof TS_CONFIG_KEYS[0])

/* Section titles for docs and --help; a section missing here is titled by
 * its own name. */
static const struct {
    const char *section, *title;
} SECTION_TITLES[] = {
    {"", "General"},
    {"model", "Model"},
    {"train", "Training (`tessera train`)"},
    {"demo", "Demo (`tessera demo`)"},
    {"log", "Logging"},
    {"parallel", "Rank layout (DP x WP_y x WP_x x SP x PP)"},
    {"forecast", "Forecasts (`tessera forecast`)"},
    {"score", "Scores (`tessera score`)"},
    {"mesh", "Mesh data and attention mask (`model.kind=mesh`)"},
    {"synth_mesh", "CFD reference simulator (`tessera synth-mesh`)"},
    {"synth", "Reference simulator (`tessera synth-era5`)"},
    {"data", "ERA5 data"},
    {"stats", "Statistics (`tessera stats`)"},
    {"bench", "Benchmark (`tessera bench`)"},
    {"plot", "Plots (`tessera plot`)"},
};

size_t ts_config_key_count(void) { return N_KEYS; }

const ts_config_key *ts_config_key_at(size_t i) { return i < N_KEYS ? &TS_CONFIG_KEYS[i] : NULL; }

const ts_config_key *ts_config_find_key(const char *name) {
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(TS_CONFIG_KEYS[i].name, name) == 0) return &TS_CONFIG_KEYS[i];
    return NULL;
}

const char *ts_config_section_title(const char *section, size_t n) {
    for (size_t i = 0; i < sizeof SECTION_TITLES / sizeof SECTION_TITLES[0]; i++)
        if (strlen(SECTION_TITLES[i].section) == n && strncmp(SECTION_TITLES[i].section, section, n) == 0)
            return SECTION_TITLES[i].title;
    return NULL;
}
