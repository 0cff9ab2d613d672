"""Two-step person search as a recipe: a trained person detector + a crop ReID model trained on the
ground-truth crops of the same training scenes (the reference every end-to-end model is compared to)."""
