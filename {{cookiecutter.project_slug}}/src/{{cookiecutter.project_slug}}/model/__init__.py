"""Loading a model artifact and running inference on it."""
