#!/usr/bin/env python3
"""The skill goals of a recipe, checked on a tessera scorecard (CSV).

    goals.py gridded|demo SCORECARD.csv
    goals.py mesh POOLED.csv [SET]

Prints one JSON line per goal: {"recipe", "goal", "value", "threshold",
"pass"}, then a summary line; exits 0 whatever the outcome (a benchmark
reports, it does not judge), 2 on a scorecard it cannot read.

Goals (issue "Forecasts worth running"), on ensemble means and 8 members:
  gridded: RMSE of z500, t850, t2m below persistence and climatology at every
           lead 1-5 days; day-1 z500 RMSE <= 0.4 x persistence; day-5 z500
           RMSE <= 0.85 x climatology; CRPS of z500, t850, t2m below both
           baselines at every lead; spread-skill (raw) of z500 and t850 in
           [0.8, 1.2] at every lead.
  demo:    day-1 z500 and t850 RMSE <= 0.75 x persistence; CRPS of z500, t850,
           t2m below persistence and climatology at every lead.
  mesh:    on held-out trajectories (POOLED.csv of scripts/skill/mesh_eval.sh:
           RMSE pooled over the trajectories), all-rollout RMSE below
           persistence and rollout-50 RMSE <= 0.7 x persistence; stretch:
           all-rollout <= 0.7 x persistence. SET names the trajectories in
           the output (default "test").
"""
import csv
import json
import sys

HEADLINE = [("z", "500", "z500"), ("t", "850", "t850"), ("t2m", "", "t2m")]


def load(path):
    table = {}
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                key = (row["variable"], row["level"], int(float(row["lead_hours"])), row["metric"], row["system"])
                table[key] = float(row["value"])
    except (OSError, KeyError, ValueError) as e:
        print(f"goals.py: {path}: cannot read the scorecard: {e}", file=sys.stderr)
        sys.exit(2)
    return table


def mesh(path, name):
    try:
        with open(path, newline="") as f:
            ratio = {row["metric"]: float(row["ratio"]) for row in csv.DictReader(f)}
        checks = [("rmse_all_rollout", 1.0, "<"), ("rmse_rollout50", 0.7, "<="), ("rmse_all_rollout", 0.7, "<=")]
        values = [ratio[m] for m, _, _ in checks]
    except (OSError, KeyError, ValueError) as e:
        print(f"goals.py: {path}: cannot read the pooled mesh scores: {e}", file=sys.stderr)
        sys.exit(2)
    passed = 0
    for (metric, limit, op), value in zip(checks, values):
        ok = value < limit if op == "<" else value <= limit
        stretch = limit == 0.7 and metric == "rmse_all_rollout"
        passed += ok
        print(json.dumps({"recipe": "mesh", "set": name, "goal": f"{metric} {op} {limit} x persistence" +
                          (" (stretch)" if stretch else ""), "value": round(value, 4), "threshold": limit,
                          "pass": bool(ok)}))
    print(json.dumps({"recipe": "mesh", "set": name, "goals": len(checks), "passed": passed}))


def main():
    if len(sys.argv) in (3, 4) and sys.argv[1] == "mesh":
        mesh(sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else "test")
        return
    if len(sys.argv) != 3 or sys.argv[1] not in ("gridded", "demo"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    recipe, table = sys.argv[1], load(sys.argv[2])
    leads = sorted({k[2] for k in table})
    results = []

    def goal(name, value, threshold, ok):
        results.append(ok)
        print(json.dumps({"recipe": recipe, "goal": name, "value": value, "threshold": threshold, "pass": bool(ok)}))

    def get(var, lev, lead, metric, system):
        return table.get((var, lev, lead, metric, system))

    def below(metric, baselines, variables):
        for var, lev, name in variables:
            for lead in leads:
                f = get(var, lev, lead, metric, "tessera")
                for b in baselines:
                    ref = get(var, lev, lead, metric, b)
                    if f is None or ref is None:
                        goal(f"{name} {metric} {lead} h < {b}", f, ref, False)
                        continue
                    goal(f"{name} {metric} {lead} h < {b}", round(f / ref, 4), 1.0, f < ref)

    def ratio(var, lev, name, lead, system, limit):
        f, ref = get(var, lev, lead, "rmse", "tessera"), get(var, lev, lead, "rmse", system)
        ok = f is not None and ref is not None and f <= limit * ref
        goal(f"{name} rmse {lead} h <= {limit} x {system}", round(f / ref, 4) if f and ref else None, limit, ok)

    if recipe == "gridded":
        below("rmse", ("persistence", "climatology"), HEADLINE)
        ratio("z", "500", "z500", 24, "persistence", 0.4)
        ratio("z", "500", "z500", 120, "climatology", 0.85)
        below("crps", ("persistence", "climatology"), HEADLINE)
        for var, lev, name in HEADLINE[:2]:
            for lead in leads:
                s = get(var, lev, lead, "spread_skill", "tessera")
                goal(f"{name} spread_skill {lead} h in [0.8, 1.2]", s, [0.8, 1.2], s is not None and 0.8 <= s <= 1.2)
    else:
        ratio("z", "500", "z500", 24, "persistence", 0.75)
        ratio("t", "850", "t850", 24, "persistence", 0.75)
        below("crps", ("persistence", "climatology"), HEADLINE)
    print(json.dumps({"recipe": recipe, "goals": len(results), "passed": sum(results)}))


if __name__ == "__main__":
    main()
