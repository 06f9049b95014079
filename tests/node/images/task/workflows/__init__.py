"""Workflow code baked into the task image, as a Flyte project's image carries its own (non-fast registration)."""
