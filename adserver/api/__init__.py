"""The HTTP API: one blueprint per area, registered by ``blueprints.register_blueprints``."""
