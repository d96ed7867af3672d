#!/usr/bin/env python3
"""Markdown tables of a tessera scorecard, as docs/results.md shows them.

    table.py SCORECARD.csv [var:level ...]     (default z:500 t:850 t2m:)

One table per variable: rows metric x lead (days), columns the systems, each
cell "value (ci_low–ci_high)"; ratios to persistence and climatology for
RMSE and CRPS in the last columns.
"""
import csv
import sys


def fmt(x):
    if x is None or x == "":
        return "—"
    v = float(x)
    if v == 0:
        return "0"
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    wanted = [a.split(":") for a in sys.argv[2:]] or [["z", "500"], ["t", "850"], ["t2m", ""]]
    rows = list(csv.DictReader(open(sys.argv[1], newline="")))
    systems = [s for s in ("tessera", "persistence", "climatology", "perfect_model") if any(r["system"] == s for r in rows)]
    for var, lev in wanted:
        mine = [r for r in rows if r["variable"] == var and r["level"] == lev]
        if not mine:
            continue
        print(f"### {var.upper()}{lev}\n")
        print("| metric | lead | " + " | ".join(systems) + " | ÷ persistence | ÷ climatology |")
        print("|---" * (len(systems) + 4) + "|")
        for metric in ("rmse", "crps", "acc", "spread_skill"):
            for lead in sorted({int(float(r["lead_hours"])) for r in mine}):
                cell = {r["system"]: r for r in mine if r["metric"] == metric and int(float(r["lead_hours"])) == lead}
                if "tessera" not in cell:
                    continue
                out = []
                for s in systems:
                    r = cell.get(s)
                    if r is None:
                        out.append("—")
                    elif r["ci_low"]:
                        out.append(f"{fmt(r['value'])} ({fmt(r['ci_low'])}–{fmt(r['ci_high'])})")
                    else:
                        out.append(fmt(r["value"]))
                ratios = []
                for b in ("persistence", "climatology"):
                    if metric in ("rmse", "crps") and b in cell and float(cell[b]["value"]) > 0:
                        ratios.append(f"{float(cell['tessera']['value']) / float(cell[b]['value']):.2f}")
                    else:
                        ratios.append("—")
                print(f"| {metric} | {lead // 24} d | " + " | ".join(out) + " | " + " | ".join(ratios) + " |")
        print()


if __name__ == "__main__":
    main()
