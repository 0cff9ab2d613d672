"""Parts every ReID recipe shares: settings, dataset and PK loader, evaluation on query/gallery splits."""
