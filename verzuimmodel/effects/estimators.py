"""Built-in estimators (registered on import)."""
