"""Logs{% if cookiecutter.use_prometheus %} and metrics{% endif %}: what operators see of the service."""
