"""Hybrid pre-training (Divide and Conquer, AAAI 2024): a whole person search model from sub-task data."""
