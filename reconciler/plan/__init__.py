"""Pure planning: rendered manifests + live state + inventory -> what to create, update, prune."""
