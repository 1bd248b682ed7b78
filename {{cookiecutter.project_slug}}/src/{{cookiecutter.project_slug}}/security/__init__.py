"""Who may call the model: credentials, scopes and the store they live in."""
