"""HTTP routers: thin, typed, no business logic."""
