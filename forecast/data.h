/* Opening the ERA5-format data of data.files the way every gridded command
 * does: the keys' options, the files' globs, one error line and exit. */
#ifndef TESSERA_FORECAST_DATA_H
#define TESSERA_FORECAST_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "io/era5_read.h"
#include "parallel/layout.h"
#include "models/swin.h"

/* data.files opened with the data.* options; rows must divide by
 * row_multiple (the model's window; 0 for none). Exits with exit code 2 for
 * an empty or unmatched data.files, 1 for a file the reader refuses.
 * Collective over lay (NULL: this rank alone): rank 0 lists the files,
 * opens them and parses their metadata once, and the other ranks receive
 * it (ts_era5_pack), opening a file only to read their blocks from it; a
 * refusal is the same line and exit on every rank. */
ts_era5_dataset *ts_open_data(const ts_config *cfg, size_t row_multiple, const ts_layout *lay);

/* The Swin model of the configuration (model.*) for an H x W grid with
 * c_in input and c_out output channels a token. */
void ts_swin_config_from(const ts_config *cfg, int H, int W, int c_in, int c_out, ts_swin_config *mc);

/* This rank's place for the Swin model in the layout: its WP block and SP
 * band. */
ts_swin_wp ts_swin_wp_of(const ts_layout *lay);

/* A date key (YYYY-MM-DD[THH], UTC) as unix seconds; `fallback` when the
 * key is empty; a usage error (exit 2) naming the key otherwise. */
int64_t ts_config_time(const ts_config *cfg, const char *key, int64_t fallback);

#endif
