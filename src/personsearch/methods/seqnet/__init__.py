"""SeqNet end-to-end person search (two sequential heads, CBGM): ``SeqNetRecipe`` and its recipes."""
