"""Identity label conventions shared by the dataset readers, the losses and the models."""

UNLABELED = -1
"""pid of a person box without an identity (CUHK-SYSU/PRW unlabeled people, COCO persons)."""

BACKGROUND = -2
"""pid of a background proposal in person search training: no loss, no memory update (any pid below
-1 is treated so)."""
