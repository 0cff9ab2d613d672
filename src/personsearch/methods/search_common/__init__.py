"""Parts every person search recipe shares: settings, scenes and loader, exact-protocol evaluation."""
