"""Running a brand: its locations, API keys and staff accounts, each change audited."""
