"""HTTP layer: blueprints, error mapping and authentication."""
