"""Family specs shipped with nlshark (YNL YAML dialect)."""
