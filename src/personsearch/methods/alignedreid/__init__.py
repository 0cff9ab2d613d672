"""AlignedReID: ``AlignedReidRecipe``, its settings and recipes (alignedreid.yaml, alignedreid_mutual.yaml)."""
