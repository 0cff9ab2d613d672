"""BoT baseline: ``BaselineRecipe`` and its recipes (baseline.yaml: CPU demo; baseline_r50_market.yaml: BoT on a GPU)."""
