"""A person detector alone (torchvision Faster R-CNN, C4 layout): the detector of two-step search."""
