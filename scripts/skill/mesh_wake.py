#!/usr/bin/python3
"""Where a mesh rollout's error comes from, late in the rollout
(docs/results.md): per trajectory of EVAL (scripts/skill/mesh_eval.sh's
folders t<k>/rollout.nc) against FILE (the graph-physics file rolled out),
over the NORMAL nodes:

  drift      domain-mean streamwise velocity at the last step, model - truth
  shedding   RMS of the velocity about its time mean, over the last 300
             steps, truth and model
  mean_err   RMS of (model time mean - truth time mean), last 300 steps
  error      RMSE of the rollout over the last 300 steps, and persistence's

    /usr/bin/python3 scripts/skill/mesh_wake.py EVAL FILE
"""
import sys

import h5py
import netCDF4
import numpy as np

ev, path = sys.argv[1], sys.argv[2]
f = h5py.File(path, "r")
keys = sorted(f.keys(), key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else k))
print("trajectory,drift,shedding_truth,shedding_model,mean_err,error,persistence")
for k, key in enumerate(keys):
    truth_all = f[key]["velocity"][...]  # (T, N, 2), file order
    d = netCDF4.Dataset(f"{ev}/t{k}/rollout.nc")
    model = np.stack([np.asarray(d["velocity_x"][:]), np.asarray(d["velocity_y"][:])], -1)  # (S, N, 2)
    normal = np.asarray(d["node_type"][:]).reshape(-1) == 0
    S = model.shape[0]
    truth = truth_all[1:S + 1][:, normal]  # rollout step s is time s + 1 of the file
    model = model[:, normal]
    late = slice(max(S - 300, 0), S)

    def shedding(x):
        x = x[late]
        return np.sqrt(((x - x.mean(0)) ** 2).mean())

    drift = model[-1, :, 0].mean() - truth[-1, :, 0].mean()
    mean_err = np.sqrt(((model[late].mean(0) - truth[late].mean(0)) ** 2).mean())
    error = np.sqrt(((model[late] - truth[late]) ** 2).mean())
    persistence = np.sqrt(((truth_all[0][normal][None] - truth[late]) ** 2).mean())
    print(f"t{k},{drift:.3f},{shedding(truth):.3f},{shedding(model):.3f},{mean_err:.3f},{error:.3f},{persistence:.3f}")
