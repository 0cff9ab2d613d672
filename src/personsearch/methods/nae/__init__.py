"""NAE / OIM end-to-end person search: ``NaeRecipe`` and its recipes (nae.yaml: CPU-sized)."""
