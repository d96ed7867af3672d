/* tessera synth-mesh: 2-D flows past obstacles, lattice Boltzmann
 * (sim/lbm.h) sampled to Gmsh triangle meshes (sim/obstacle.h), written as
 * graph-physics HDF5 (io/mesh_file.h). docs/mesh-data.md. */
#ifndef TESSERA_SIM_SYNTH_MESH_H
#define TESSERA_SIM_SYNTH_MESH_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *path;     /* the .h5 (its meta .json beside it) */
    const char *history;  /* resolved configuration, stored in the file; may be NULL */
    size_t trajectories, steps;
    double dt;            /* between saved steps */
    double re_min, re_max;
    size_t lattice;       /* cells across the channel */
    double mesh_size;     /* far triangle size / channel height */
    double refine;
    double spinup;        /* time simulated before the first saved step */
    uint64_t seed;
} ts_synth_mesh_opts;

/* The lattice a Reynolds number needs: the smallest obstacle (0.08 of 0.41)
 * must span at least Re / 17 cells (measured: Re 200 stays stable at 12 cells across). */
size_t ts_synth_mesh_min_lattice(double re_max);

int ts_synth_mesh_run(const ts_synth_mesh_opts *o, char *err, size_t cap);

#endif
