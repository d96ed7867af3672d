/* Configuration from a YAML file (libyaml).
 *
 * The top level is a mapping; nested mappings flatten to dotted keys
 * (`parallel: {dp: 2}` is `parallel.dp: 2`, and the flat spelling works
 * too). Every scalar goes through ts_config_set with origin "path:line", so
 * a bad key or value is reported at its line. Lists, null values, a key set
 * twice in one file and more than one document are errors. An empty file
 * sets nothing.
 */
#ifndef TESSERA_IO_CONFIG_YAML_H
#define TESSERA_IO_CONFIG_YAML_H

#include <stddef.h>

#include "core/config.h"

/* Returns 0, or -1 with one line in `err` naming the file and line. A file
 * that is not valid YAML sets nothing; on a bad key or value, the keys
 * before it keep their new values (callers exit on error anyway). */
int ts_config_load_yaml(ts_config *cfg, const char *path, char *err, size_t errcap);

/* The same from len bytes of text (no terminator needed); `name` stands for
 * the file in errors. The fuzzing harness's entry point (tests/fuzz/). */
int ts_config_load_yaml_text(ts_config *cfg, const char *text, size_t len, const char *name, char *err, size_t errcap);

#endif
